"""Bot config -> LangGraph StateGraph: the compiler, its nodes, the checkpointer and the graph cache."""
