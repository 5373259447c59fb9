"""The test kit that tests and bench share (bench imports nothing else from tests/):

- ``paths``: ``REPO``, ``EXAMPLES``, ``DATA``;
- ``objects``: Pod, VMI and VM builders, an example manifest, the virt-launcher pod (from examples/);
- ``review``: AdmissionReviews as kube-apiserver sends them (``make_review``, ``GVK``), patches, CRD schemas;
- ``cluster``: Node, KubeVirt CR and NAD objects and the cluster view's snapshot of them;
- ``chart``: the Helm chart rendered by the pinned helm;
- ``server``: a ``vm-admission serve`` process over HTTPS (``ServerProcess``);
- ``controlplane``: etcd + kube-apiserver on loopback (``ControlPlane``) and registering a webhook with it;
- ``tools``: the pinned CLI tools (helm, promtool); ``container``: the container image under test.
"""
