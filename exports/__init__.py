"""Print-ready export (issue 10): the interior PDF, the cover PDF and the ZIP of a book.

The rendering engine (spec, geometry, pictures, textpanel, interior, cover, archive) works on
plain dataclasses and file paths only, so it runs in a worker thread or another process without
the web app; the service and routes adapt books to it.
"""
