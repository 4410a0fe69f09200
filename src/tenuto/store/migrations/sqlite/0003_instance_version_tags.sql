-- The version and the tags an instance was started with (tags: a JSON object of strings).
ALTER TABLE instances ADD COLUMN version TEXT;
ALTER TABLE instances ADD COLUMN tags TEXT;
