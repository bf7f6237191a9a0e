"""The read-only SPARQL 1.1 endpoint over the federated catalog (protocol_spec/12-sparql.md)."""
