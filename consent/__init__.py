"""The consent-and-policy service: the pure decision core (``core``), protocols as files
(``policy``), the stream processor (``processor``) and the consent registry (``registry``)."""
