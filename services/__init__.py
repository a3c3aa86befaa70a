"""infoshare services: the agency services, delivery, audit and the shared event backbone."""
