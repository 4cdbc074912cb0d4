"""Customer chat through 微信客服 (kf): intake, reply routing, handoff to the customer's guide."""
