"""The install engine: Oz in a libvirt guest (``engine.py``), its template and config
(``template.py``), the guest's lifecycle in libvirt (``guest.py``), what Oz 0.17 is
taught at run time (``compat.py``) and the diagnosis of a stalled install
(``diagnose.py``)."""
