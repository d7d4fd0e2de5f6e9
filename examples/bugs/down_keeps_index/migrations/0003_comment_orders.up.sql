COMMENT ON TABLE orders IS 'One checkout of a basket';
