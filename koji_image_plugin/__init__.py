"""koji-image-plugin core library: spec, engine, formats, boot test, outputs.

It never imports kojihub or kojid; the Koji plugins in hub/, builder/ and cli/ call it.
"""

__version__ = "0.1.0"
