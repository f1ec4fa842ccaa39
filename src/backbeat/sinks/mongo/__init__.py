"""The MongoDB result sink and reader (``--sink mongo``, ``--store mongodb://...``): plays per
minute and song, artist and genre as documents with full counts, written exactly once by
batch id, and the ranked queries answered from them. Needs ``backbeat[mongo]`` (pymongo),
imported only by these modules.

Next: ``layout.py`` (the documents and the connection), ``sink.py`` (the writer),
``reader.py`` (the answers).
"""
