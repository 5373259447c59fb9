"""The cluster (docs/cluster-view.md, docs/audit.md): the only package that talks to the API server, through its
client layer (:mod:`webhook.cluster.client`); the view (:mod:`webhook.cluster.view`) and its folds. Rules never
import it."""
