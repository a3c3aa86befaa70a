"""Operating a running infoshare: the table of processes and how each is run, what
``infoshare status`` measures and judges, and reading and retrying dead letters."""
