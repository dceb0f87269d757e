-- the dashboard's query
SELECT (CASE WHEN symbol THEN symbol ELSE EXISTS (SELECT 1 FROM quotes WHERE '"') END) IS NULL FROM quotes AS a WHERE (EXISTS (SELECT 1 FROM "QUOTES" WHERE symbol) + symbol);