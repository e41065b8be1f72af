"""The LIGER network: an encoder-decoder Transformer over semantic-ID tokens with a dense item
tower.
"""
