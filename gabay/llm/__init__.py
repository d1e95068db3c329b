"""Language model providers (OpenAI, DeepSeek), the failover chain and what each call costs."""
