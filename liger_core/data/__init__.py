"""Source data to model inputs: reading and validating the catalog and events, item text and
its embeddings, stable item indexes, user sequences and the evaluation split.
"""
