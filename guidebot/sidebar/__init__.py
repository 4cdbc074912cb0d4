"""The guides' chat sidebar: JS-SDK tickets and signatures, the customer card's data."""
