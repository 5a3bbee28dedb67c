"""Building the benchmark from instance datasets (paper §3, App. C): prompts as data, the boxed
prompt image, question generation and verification with an LLM, and annotator agreement."""
