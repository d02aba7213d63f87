"""The knowledge base: documents and chunks with embeddings in pgvector, hybrid search, FAQs, bot tools."""
