"""OAI-PMH 2.0: the provider at ``/oai`` (:mod:`node.oai.provider`) and the harvester behind ``edufed import URL``
(:mod:`node.oai.harvest`), so the node joins the existing repository world in both directions."""
