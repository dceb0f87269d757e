-- DROP TABLE quotes
SELECT 1 /* ; DELETE FROM quotes */