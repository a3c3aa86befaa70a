"""The pure decision core: protocols, field transforms, pseudonyms and subject state.

Nothing here performs I/O or imports aiokafka, FastAPI or sqlmodel (a unit test enforces
it), so every decision can be tested and benchmarked in isolation.
"""
