"""The consent registry: the consent API (record and search consent, re-identify a token for
an IG officer) and the consent view every reader of ``consent.records`` keeps."""
