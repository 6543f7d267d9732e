-- Authenticated deliveries that could not be read are kept too (with the reason), so a mapping fix
-- can re-derive their events; unauthenticated ones never are.
ALTER TABLE receipt DROP CONSTRAINT receipt_outcome_check;
ALTER TABLE receipt ADD CONSTRAINT receipt_outcome_check CHECK (outcome IN ('accepted', 'ignored', 'rejected'));
