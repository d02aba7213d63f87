"""Voice: LiveKit Agents sessions whose brain is the compiled graph of a voicebot config."""
