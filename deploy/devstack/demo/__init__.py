"""The CP-IS demo: its inputs in each agency's native format (``scenario``, the tests' data
too), playing them against a running stack, and showing what happened."""
