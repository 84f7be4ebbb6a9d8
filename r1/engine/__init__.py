"""Generation backends behind one Protocol (`types.Backend`): our torch engine, and vLLM / SGLang adapters."""
