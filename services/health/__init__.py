"""Health agency service: FHIR R4 in, canonical health.* events out."""
