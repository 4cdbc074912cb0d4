"""WeCom error codes the sandbox answers with, and the exceptions that carry them."""

from __future__ import annotations

# Codes and meanings from FACTS §3.12 unless marked [mem]: those are not in FACTS and come
# from memory of WeCom's global error-code page; they are the sandbox's best guess.
BUSY = -1
INVALID_SECRET = 40001
INVALID_USERID = 40003  # [mem] 不合法的UserID
INVALID_MEDIA_TYPE = 40004  # real media/upload error body in samples/api/error-responses
INVALID_FILE_TYPE = 40005  # [mem] 不合法的文件类型
INVALID_FILE_SIZE = 40006  # [mem] 不合法的文件大小
INVALID_MEDIA_ID = 40007  # doc example quoted in samples/api/error-responses
INVALID_MSGTYPE = 40008  # [mem] 不合法的消息类型
INVALID_CORPID = 40013  # [mem] 不合法的CorpID (named by the brief, not by FACTS)
INVALID_TOKEN = 40014
INVALID_AGENTID = 40056  # [mem] 不合法的agentid
INVALID_PARAM = 40058  # [mem] 不合法的参数: the sandbox's catch-all for a bad field
INVALID_TAG = 40068
TAG_NAME_EXISTS = 40071
# [mem] from a third-party summary, not confirmed: an app edits or deletes only its own tags
TAG_NOT_CREATED_BY_APP = 301002
INVALID_EXTERNAL_USERID = 40096
MISSING_TOKEN = 41001
MISSING_MEDIA = 41005  # [mem] 缺少多媒体文件数据
MISSING_EXTERNAL_USERID = 41035  # real batch item error in samples/api/error-responses
WELCOME_NOT_ALLOWED = 41051
TOO_MANY_ATTACHMENTS = 41064
INVALID_ATTACHMENT = 41065
TOKEN_EXPIRED = 42001
TEXT_EMPTY = 44004
MESSAGE_TOO_LARGE = 45002
RATE_LIMITED = 45009
BAD_JSON = 47001  # [mem] 数据格式错误: FACTS names no code for a body that is not JSON
NO_RELATION = 84061
USER_NOT_FOUND = 60111  # [mem] UserID不存在 (not in FACTS §3.12)
DEPARTMENT_NOT_FOUND = 60123  # [mem] 无效的部门id (not in FACTS §3.12)
# 微信客服 (FACTS-next §A.4, §A.6, doc error-code mirror)
KF_SEND_COUNT_LIMIT = 95001  # 发送客服消息次数限制 (5 per customer message)
KF_SEND_TIME_LIMIT = 95002  # 发送客服消息时间限制 (48 h)
KF_NOT_SERVICER = 95014  # 用户不是接待人员
KF_BAD_TRANSITION = 95016  # 不允许这种状态转移
KF_STATE_FORBIDS_SEND = 95018  # 当前会话状态不允许发送
KF_SERVICER_STOPPED = 95019  # 接待人员已停止接待
# Not in FACTS (sandbox decisions): an unknown/expired sync_msg token and an unknown, used,
# expired or stale send_msg_on_event code answer the catch-all 40058.
KF_INVALID_TOKEN = INVALID_PARAM
KF_CODE_INVALID = INVALID_PARAM
# 客户继承 (FACTS-next §D): per-customer codes of transfer_customer, but 40097, 40098 and 40130,
# which answer the whole request.
HANDOVER_NOT_RESIGNED = 40097  # 该成员尚未离职
TAKEOVER_INACTIVE = 40098  # the takeover member does not exist or is not active (status 1)
TAKEOVER_FULL = 40099  # 外部联系人的数量已达上限
TRANSFER_IN_PROGRESS = 40100  # 已经在转移流程中
TRANSFER_TOO_OFTEN = 40128  # at most 2 transfers of a customer within 90 days
CUSTOMER_IN_TRANSFER = 40129  # 当前客户正在转接中
SAME_HANDOVER_TAKEOVER = 40130  # 原跟进人与接手人一样
NOT_FOLLOWER = 40131  # handover_userid 并不是外部联系人的跟进人
# 客户群 (FACTS-next §C)
# An unknown or dismissed chat_id: not in FACTS (assumed); [mem] 40050 chatid不存在.
INVALID_CHAT_ID = 40050
OWNER_FILTER_REQUIRED = 81017  # groupchat/list without owner_filter when > 1000 members
# 客户群继承 (FACTS-next §C.6): per-chat codes of groupchat/transfer and onjob_transfer
OWNER_NOT_RESIGNED = 90500  # 群主并未离职
NOT_CUSTOMER_GROUP = 90501  # 非客户群
OWNER_RESIGNED = 90502  # 群主已经离职
SAME_GROUP_OWNER = 90504  # 群主没变
GROUP_INHERITING = 90507  # 离职群正在继承处理中
GROUP_INHERITED = 90508  # 离职群已经继承
# Not in FACTS (assumed): FACTS-next §C.6 states the rules but not their codes. A group's
# third on-job transfer within 90 days answers 40128, 客户继承's code for the same rule; a
# person's 301st group of the day answers 45009, the sandbox's "over a frequency limit".
GROUP_TRANSFER_TOO_OFTEN = TRANSFER_TOO_OFTEN
GROUP_TRANSFER_DAILY_LIMIT = RATE_LIMITED
# 入群欢迎语素材 (FACTS-next §C.4, doc mirror)
GROUP_WELCOME_FULL = 41055  # 模板数量达到上限 (100 per corp)
GROUP_WELCOME_NOT_EDITABLE = 41058  # 无编辑权限: another app created the template
# An unknown template_id: not in FACTS (assumed), the catch-all 40058 as for an unknown msgid.
GROUP_WELCOME_NOT_FOUND = INVALID_PARAM
# 获客助手 (FACTS-next §F, doc mirror); how many links a corp may keep is not in FACTS: the
# sandbox's 100 (assumed, acquisition.py).
ACQUISITION_LINKS_FULL = 41095  # 获客链接数量超过上限
# An unknown or deleted link_id: not in FACTS (assumed), the catch-all 40058.
ACQUISITION_LINK_NOT_FOUND = INVALID_PARAM
UNKNOWN_PATH = 404  # not a WeCom code: an API the sandbox does not implement (HTTP 404 too)

MESSAGES = {
    BUSY: "system busy",
    INVALID_SECRET: "invalid credential (corpsecret)",
    INVALID_CORPID: "invalid corpid",
    INVALID_TOKEN: "invalid access_token",
    MISSING_TOKEN: "access_token missing",
    TOKEN_EXPIRED: "access_token expired",
    RATE_LIMITED: "api freq out of limit",
    WELCOME_NOT_ALLOWED: "externaluser has started chatting",
    NO_RELATION: "external contact relation does not exist",
    USER_NOT_FOUND: "userid not found",
    DEPARTMENT_NOT_FOUND: "invalid department id",
    HANDOVER_NOT_RESIGNED: "the handover member has not resigned",
    TAKEOVER_INACTIVE: "the takeover member is not active",
    SAME_HANDOVER_TAKEOVER: "handover_userid and takeover_userid are the same",
    INVALID_CHAT_ID: "chatid not found",
    OWNER_FILTER_REQUIRED: "owner_filter required: the app sees more than 1000 members",
    OWNER_NOT_RESIGNED: "group owner has not resigned",
    NOT_CUSTOMER_GROUP: "not a customer group",
    OWNER_RESIGNED: "group owner has resigned",
    SAME_GROUP_OWNER: "new_owner is already the group owner",
    GROUP_INHERITING: "the resigned group is being inherited",
    GROUP_INHERITED: "the resigned group has been inherited",
    TRANSFER_TOO_OFTEN: "transferred twice within 90 days",
    GROUP_WELCOME_FULL: "group welcome template count reaches the limit",
    GROUP_WELCOME_NOT_EDITABLE: "no permission to edit the group welcome template",
    ACQUISITION_LINKS_FULL: "customer acquisition link count reaches the limit",
    KF_SEND_COUNT_LIMIT: "send msg count limit",
    KF_SEND_TIME_LIMIT: "send msg time limit",
    KF_NOT_SERVICER: "user is not servicer",
    KF_BAD_TRANSITION: "service state transition not allowed",
    KF_STATE_FORBIDS_SEND: "current session state does not allow sending",
    KF_SERVICER_STOPPED: "servicer has stopped serving",
    TAG_NOT_CREATED_BY_APP: "tag or group not created by this app",
}


class ApiError(Exception):
    """A WeCom API call that answers a non-zero errcode (always with HTTP 200)."""

    def __init__(self, errcode: int, errmsg: str = "") -> None:
        self.errcode = errcode
        self.errmsg = errmsg or MESSAGES.get(errcode, "error")
        super().__init__(f"{errcode} {self.errmsg}")

    def body(self) -> dict[str, object]:
        return {"errcode": self.errcode, "errmsg": f"{self.errmsg}, hint: [sandbox]"}


class ControlError(Exception):
    """A bad request to a /_sandbox control route or to the Python simulate API."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(f"{status} {message}")
