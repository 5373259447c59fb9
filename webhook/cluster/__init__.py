"""The cluster view (CONTRACT §9): the only package that talks to the API server. Rules never import it."""
