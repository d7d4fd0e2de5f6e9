DROP VIEW order_summaries;
