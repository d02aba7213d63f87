-- Simulated users (issue 11, docs/evals.md "Simulated users"): a case may give a simulated user (persona,
-- scenario, expected outcome, max_turns) instead of scripted turns; such a case has no user_input.
ALTER TABLE evals ADD COLUMN simulated_user jsonb;
ALTER TABLE evals ALTER COLUMN user_input DROP NOT NULL;
ALTER TABLE evals ADD CONSTRAINT evals_input_or_simulated_user
    CHECK ((user_input IS NULL) <> (simulated_user IS NULL));
