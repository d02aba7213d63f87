"""The shared core used by chat and voice alike: configs, tools, providers, storage, tenancy."""
