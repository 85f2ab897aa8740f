"""Release tooling: image drops (``drop.py``, ``sources.py``), laid out in the mirror
tree (``publish.py``, ``readme.py``) with an index page and a feed (``index.py``), and
the weekly job (``weekly.py``, ``weekly_config.py``, ``weekly_state.py``)."""
