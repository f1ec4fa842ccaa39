"""Recommendations from listening history, updated as people listen (extra ``recommend``).

The data flow: a store's listens, read through the reader's ``Interactions`` query
(``history.py``: what each listener's listens say about each track, as sparse matrices) ->
``items.py`` (the tracks: a catalog's and the history's, with content vectors from audio
features and genres) -> ``model.py`` (``implicit``'s ALS on the history, trained in full) ->
``rank.py`` (collaborative scores blended with sound and genre popularity, with a reason per
track) -> ``service.py`` (the model a process serves, folding in each committed batch's
listens without a retrain) -> ``reader.py`` (the named queries ``recommendations``,
``similar-tracks`` and ``model-info`` beside a store's own) and ``evaluate.py`` (a time split:
NDCG@10, recall@10 and coverage against the most-played list). Models are kept on the store's
shelf (``backbeat.sinks.shelf``): a file beside the DuckDB store, a table in PostgreSQL.
"""
