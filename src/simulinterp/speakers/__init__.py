"""Who is speaking: speaker embeddings, online change detection and clustering."""
