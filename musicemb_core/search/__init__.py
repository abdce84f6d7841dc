"""Search: nearest segments, song re-identification and label votes over the FAISS index; query by humming."""
