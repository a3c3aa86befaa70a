"""Education agency service: a school's MIS CSV exports and JSON in, canonical events out."""
