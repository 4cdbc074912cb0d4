"""The only importer of openai: the chat-completion client and the prompts (pure)."""
