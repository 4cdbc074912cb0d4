"""The WeCom boundary: the only package that imports wechatpy."""
