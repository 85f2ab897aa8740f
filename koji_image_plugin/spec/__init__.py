"""What a request says: the image spec, an upload request, the host config, and the
words they are written in (arches, variants, formats, distros). Nothing here runs a tool
or talks to a server. The hub plugin loads this, ``koji/`` and the pure data modules
those use (``build/results.py``, ``clouds/records.py``), never a cloud SDK."""
