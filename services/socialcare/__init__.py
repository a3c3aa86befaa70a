"""Children's social care agency service: case-system JSON in, canonical events out."""
