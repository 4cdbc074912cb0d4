"""移动工作台: the phone page (/m/<tenant>) where a guide sees their month and today's to-dos
and a store manager (店长) their store's figures and guides."""
