"""Provider webhooks (Twilio, Missive): public, CSRF-exempt, every call signature-checked."""
