"""The one catalogue of user-facing text. Chinese is the default; English when lang="en".

Every entry carries both languages side by side so a new text cannot be added in one only, and a
test checks that both use the same placeholders. Short labels (``field.*``) stay within 5 字 in
Chinese and about 10 Latin letters in English: WeCom cuts card labels beyond that.

Stage names and routing-rule names are not here: sales ops write them in config in their own
language, and they are shown as written (see :func:`stage_name`).
"""

from __future__ import annotations

import string
from typing import Mapping

LANGUAGES: tuple[str, ...] = ("zh", "en")
DEFAULT_LANGUAGE = "zh"

# A value is the text, or for a count the plural forms by CLDR category: English has "one"
# (n == 1) and "other"; Chinese has "other" only. ``t(key, lang, n=...)`` picks the form.
_CATALOGUE: dict[str, dict[str, str | dict[str, str]]] = {
    # --- separators and small words -------------------------------------------------------
    "sep.label": {"zh": "：", "en": ": "},
    "sep.list": {"zh": "、", "en": ", "},
    "badges": {"zh": "【{badges}】", "en": "[{badges}]"},
    "value.none": {"zh": "无", "en": "none"},
    "value.unknown": {"zh": "未填写", "en": "not given"},
    "customer.unnamed": {"zh": "未留名客户", "en": "Unnamed customer"},
    "brand": {"zh": "leadbot", "en": "leadbot"},
    "footer.lead": {"zh": "线索 #{lead_id}", "en": "Lead #{lead_id}"},
    "footer.customer": {"zh": "客户 #{customer_id}", "en": "Customer #{customer_id}"},
    # --- field labels (≤5 字) -------------------------------------------------------------
    "field.phone": {"zh": "电话", "en": "Phone"},
    "field.company": {"zh": "公司", "en": "Company"},
    "field.channel": {"zh": "来源", "en": "Source"},
    "field.region": {"zh": "地区", "en": "Region"},
    "field.amount": {"zh": "金额", "en": "Amount"},
    "field.history": {"zh": "历史", "en": "History"},
    "field.duplicate": {"zh": "疑似重复", "en": "Duplicate"},
    "field.sla": {"zh": "跟进时限", "en": "Due"},
    "field.timing": {"zh": "时限起算", "en": "Clock"},
    "timing.off_hours": {"zh": "{came} 到达，{starts} 起算", "en": "came in {came}, starts {starts}"},
    "field.owner": {"zh": "负责人", "en": "Owner"},
    "field.stage": {"zh": "阶段", "en": "Stage"},
    "field.last_activity": {"zh": "最近跟进", "en": "Last touch"},
    "field.open_leads": {"zh": "进行中", "en": "Open leads"},
    "field.contact": {"zh": "微信昵称", "en": "Contact"},
    "field.match": {"zh": "匹配依据", "en": "Matched on"},
    "field.note": {"zh": "提示", "en": "Note"},
    "field.incoming": {"zh": "新录入", "en": "New"},
    "field.existing": {"zh": "已有客户", "en": "Existing"},
    "field.score": {"zh": "相似度", "en": "Similarity"},
    "field.reason": {"zh": "原因", "en": "Reason"},
    "field.from": {"zh": "原负责人", "en": "From"},
    "field.to": {"zh": "新负责人", "en": "To"},
    "field.overdue": {"zh": "已超时", "en": "Overdue"},
    "field.level": {"zh": "升级级别", "en": "Level"},
    "field.claimed_by": {"zh": "认领人", "en": "Claimed by"},
    # --- lead cards -----------------------------------------------------------------------
    "lead.title": {"zh": "新线索：{name}", "en": "New lead: {name}"},
    "lead.history": {"zh": "{leads} · {activities}", "en": "{leads} · {activities}"},
    "lead.first_contact": {"zh": "首次咨询", "en": "First contact"},
    "claimed.by": {"zh": "已被 {name} 认领", "en": "Claimed by {name}"},
    "claimed.self": {"zh": "你已认领：{name}", "en": "You claimed {name}"},
    "pool.title": {"zh": "公海线索：{name}", "en": "Pool lead: {name}"},
    "pool.subtitle": {"zh": "无人认领 · 先到先得", "en": "Unclaimed · first to claim gets it"},
    "duplicate.question": {"zh": "可能与 {name} 重复 — 合并?",
                           "en": "Possible duplicate of {name} — merge?"},
    "reminder.title": {"zh": "提醒：{name} 还在等你跟进", "en": "Reminder: {name} is waiting"},
    "escalation.title": {"zh": "升级：{name} 超时未跟进", "en": "Escalation: {name} not followed up"},
    "escalation.title_due": {"zh": "升级：{name} 即将超时", "en": "Escalation: {name} almost overdue"},
    "escalation.subtitle": {"zh": "{owner} 已超时 {overdue}", "en": "{owner} is {overdue} overdue"},
    "escalation.subtitle_plain": {"zh": "负责人：{owner}", "en": "Owner: {owner}"},
    "escalation.level": {"zh": "第 {level} 级", "en": "Level {level}"},
    "reassign.title": {"zh": "线索已改派：{name}", "en": "Lead reassigned: {name}"},
    "reassign.body": {"zh": "从 {from_name} 改派给 {to_name}",
                      "en": "From {from_name} to {to_name}"},
    "rollup.title": {"zh": "你有 {n} 条新线索", "en": {"one": "You have {n} new lead", "other": "You have {n} new leads"}},
    "rollup.more": {"zh": "另有 {n} 条", "en": "and {n} more"},
    "rollup.subtitle": {"zh": "消息较多，已合并为一条", "en": "Grouped into one message"},
    "friend.title": {"zh": "新好友是已有客户：{name}", "en": "New contact is customer {name}"},
    "friend.owned_by_other": {"zh": "该客户由 {owner} 负责", "en": "Owned by another rep: {owner}"},
    "friend.owned_by_you": {"zh": "你是该客户的负责人", "en": "You own this customer"},
    "friend.no_owner": {"zh": "该客户暂无负责人", "en": "This customer has no owner"},
    "friend.no_activity": {"zh": "暂无跟进记录", "en": "No activity yet"},
    # --- SLA countdown and durations ------------------------------------------------------
    "sla.remaining": {"zh": "还剩 {duration}", "en": "{duration} left"},
    "sla.due_within": {"zh": "{minutes} 分钟内跟进", "en": "Follow up within {minutes} min"},
    "sla.overdue": {"zh": "已超时 {duration}", "en": "Overdue by {duration}"},
    "sla.just_overdue": {"zh": "刚刚超时", "en": "Just overdue"},
    "duration.minutes": {"zh": "{minutes} 分钟", "en": "{minutes} min"},
    "duration.hours": {"zh": "{hours} 小时 {minutes} 分钟", "en": "{hours} h {minutes} min"},
    "duration.days": {"zh": "{days} 天 {hours} 小时", "en": "{days} d {hours} h"},
    "ago.just_now": {"zh": "刚刚", "en": "just now"},
    "ago.minutes": {"zh": "{n} 分钟前", "en": "{n} min ago"},
    "ago.hours": {"zh": "{n} 小时前", "en": "{n} h ago"},
    "ago.days": {"zh": "{n} 天前", "en": {"one": "{n} day ago", "other": "{n} days ago"}},
    # --- badges ---------------------------------------------------------------------------
    "badge.silent": {"zh": "沉默客户", "en": "Silent"},
    "badge.duplicate": {"zh": "疑似重复", "en": "Duplicate?"},
    "badge.overdue": {"zh": "已超时", "en": "Overdue"},
    "badge.other_owner": {"zh": "他人客户", "en": "Other rep"},
    "badge.pool": {"zh": "公海", "en": "Pool"},
    "badge.escalated": {"zh": "已升级", "en": "Escalated"},
    # --- match reasons (identity resolution codes; unknown codes pass through) ------------
    "match.phone": {"zh": "手机号相同", "en": "same phone"},
    "match.email": {"zh": "邮箱相同", "en": "same email"},
    "match.unionid": {"zh": "微信相同", "en": "same WeChat"},
    "match.external_userid": {"zh": "企业微信好友相同", "en": "same WeCom contact"},
    "match.dingtalk_id": {"zh": "钉钉账号相同", "en": "same DingTalk account"},
    "match.id_number": {"zh": "证件号相同", "en": "same ID number"},
    "match.name_company": {"zh": "姓名与公司相近", "en": "similar name and company"},
    "match.name": {"zh": "姓名相近", "en": "similar name"},
    "match.mobile": {"zh": "手机号相同", "en": "same mobile"},
    "match.landline": {"zh": "座机相同", "en": "same landline"},
    "match.email_domain": {"zh": "邮箱域名相同", "en": "same email domain"},
    "match.company": {"zh": "公司相近", "en": "similar company"},
    "match.address": {"zh": "地址相近", "en": "similar address"},
    "match.city": {"zh": "城市相同", "en": "same city"},
    "match.wechat_unionid": {"zh": "微信相同", "en": "same WeChat"},
    "match.wecom_external_userid": {"zh": "企业微信好友相同", "en": "same WeCom contact"},
    # --- source channels (unknown codes pass through) -------------------------------------
    "channel.api": {"zh": "接口", "en": "API"},
    "channel.web": {"zh": "官网", "en": "Website"},
    "channel.web_form": {"zh": "官网表单", "en": "Web form"},
    "channel.ads": {"zh": "广告投放", "en": "Ads"},
    "channel.call_center": {"zh": "呼叫中心", "en": "Call center"},
    "channel.phone": {"zh": "电话", "en": "Phone"},
    "channel.wecom": {"zh": "企业微信", "en": "WeCom"},
    "channel.dingtalk": {"zh": "钉钉", "en": "DingTalk"},
    "channel.referral": {"zh": "转介绍", "en": "Referral"},
    "channel.import": {"zh": "导入", "en": "Import"},
    "channel.event": {"zh": "展会活动", "en": "Event"},
    "channel.expo": {"zh": "展会", "en": "Trade show"},
    "channel.baidu": {"zh": "百度推广", "en": "Baidu ads"},
    "channel.baidu_ads": {"zh": "百度推广", "en": "Baidu ads"},
    "channel.wechat_ad": {"zh": "朋友圈广告", "en": "WeChat Moments ad"},
    "channel.wechat": {"zh": "微信", "en": "WeChat"},
    "channel.douyin": {"zh": "抖音", "en": "Douyin"},
    "channel.email": {"zh": "邮件", "en": "Email"},
    "channel.crm": {"zh": "CRM 同步", "en": "CRM sync"},
    # --- stage gates (config codes; unknown codes pass through) ---------------------------
    "gate.needs_document": {"zh": "需求文档", "en": "needs document"},
    "gate.decision_chain": {"zh": "决策链", "en": "decision chain"},
    "gate.proposal": {"zh": "方案书", "en": "proposal"},
    "gate.contract": {"zh": "合同", "en": "contract"},
    "stage.current": {"zh": "当前阶段：{stage}", "en": "Stage: {stage}"},
    "stage.moved": {"zh": "已推进到 {stage}", "en": "Moved to {stage}"},
    # --- buttons (≤10 字; WeCom textcard btntxt ≤4 chars) --------------------------------
    "button.claim": {"zh": "认领", "en": "Claim"},
    "button.advance": {"zh": "推进阶段", "en": "Advance"},
    "button.merge": {"zh": "合并", "en": "Merge"},
    "button.distinct": {"zh": "不是同一人", "en": "Not the same"},
    "button.reassign": {"zh": "改派", "en": "Reassign"},
    "button.snooze": {"zh": "稍后提醒", "en": "Snooze"},
    "button.pass": {"zh": "放弃", "en": "Pass"},
    "button.undo": {"zh": "撤销", "en": "Undo"},
    "button.reinstate": {"zh": "恢复派单", "en": "Reinstate"},
    "button.details": {"zh": "详情", "en": "Open"},
    "button.act": {"zh": "去处理", "en": "Act"},
    # --- card states (WeCom shows them on the greyed-out button) --------------------------
    "state.open": {"zh": "待处理", "en": "Open"},
    "state.claimed": {"zh": "已认领", "en": "Claimed"},
    "state.closed": {"zh": "已关闭", "en": "Closed"},
    "state.merged": {"zh": "已合并", "en": "Merged"},
    "state.distinct": {"zh": "已标记不同", "en": "Kept apart"},
    "state.reassigned": {"zh": "已改派", "en": "Reassigned"},
    "state.passed": {"zh": "已放弃", "en": "Passed"},
    "state.snoozed": {"zh": "已推迟", "en": "Snoozed"},
    "state.advanced": {"zh": "已推进", "en": "Advanced"},
    "state.expired": {"zh": "已过期", "en": "Expired"},
    "state.undone": {"zh": "已撤销", "en": "Undone"},
    "state.info": {"zh": "已读", "en": "Read"},
    "state.reinstated": {"zh": "已恢复", "en": "Reinstated"},
    # --- results of a tap -----------------------------------------------------------------
    "result.claimed": {"zh": "认领成功，请尽快联系客户", "en": "Claimed. Contact the customer soon."},
    "result.passed": {"zh": "已放弃，线索将转给其他同事", "en": "Passed. The lead goes to a colleague."},
    "result.merged": {"zh": "已合并到 {name}", "en": "Merged into {name}"},
    "result.distinct": {"zh": "已标记为不同客户", "en": "Marked as different customers"},
    "result.snoozed": {"zh": "将在 {duration}后再提醒你", "en": "We will remind you in {duration}"},
    "result.reassigned": {"zh": "已改派给 {name}", "en": "Reassigned to {name}"},
    "outcome.pooled": {"zh": "已退回公海", "en": "Back in the pool"},
    "outcome.assigned_to": {"zh": "已转给 {name}，待其认领", "en": "With {name}, not claimed yet"},
    "outcome.you_claimed": {"zh": "你已认领", "en": "You claimed it"},
    "notice.taken": {"zh": "线索 {name} 已不再由你跟进：{outcome}", "en": "Lead {name} is no longer yours: {outcome}"},
    "value.pool": {"zh": "公海", "en": "the pool"},
    "result.undone": {"zh": "已撤销", "en": "Undone"},
    "result.undone_merge": {"zh": "已撤销合并，两位客户恢复独立", "en": "Merge undone: two customers again"},
    "merge.undo_below": {"zh": "合并错了？可在下一条消息中撤销", "en": "Wrong merge? Undo it from the next message."},
    "error.merge_refused": {"zh": "无法合并到 {name}：客户已变更或被标记为不同客户",
                            "en": "Cannot merge into {name}: the customers changed or were marked different"},
    "error.undo_refused": {"zh": "无法撤销：之后又有合并，请先撤销那一次", "en": "Cannot undo: a later merge must be undone first"},
    "gate.supply_button": {"zh": "去补充", "en": "Add it"},
    # --- errors ---------------------------------------------------------------------------
    "error.token_expired": {"zh": "操作已过期，请在最新的卡片上重试",
                            "en": "This action has expired. Please use the latest card."},
    "error.token_forged": {"zh": "操作校验失败，请勿转发或修改链接",
                           "en": "This action could not be verified. Do not forward or edit the link."},
    "error.not_allowed": {"zh": "你没有权限执行此操作", "en": "You are not allowed to do this."},
    "error.already_claimed": {"zh": "已被 {name} 认领", "en": "Already claimed by {name}"},
    "error.missing_gate": {"zh": "推进到「{stage}」前需要先补充：{evidence}",
                           "en": "Before moving to “{stage}”, add: {evidence}"},
    "error.already_done": {"zh": "该操作已处理过", "en": "This was already done."},
    "error.not_found": {"zh": "没有找到这条线索", "en": "Lead not found."},
    "error.unknown_command": {"zh": "没听懂。发送“帮助”查看可用命令",
                              "en": "Sorry, I did not get that. Send “help” to see what I can do."},
    "error.internal": {"zh": "出错了，请稍后再试", "en": "Something went wrong. Please try again later."},
    # --- text commands --------------------------------------------------------------------
    "cmd.help": {"zh": "帮助", "en": "help"},
    "robot.quota_exhausted": {"zh": "本组织的钉钉接口调用额度已用完，机器人没能读到你的消息。请联系管理员；额度恢复后请重新发送。",
                              "en": "DingTalk's API call quota for this organisation is used up, so the robot could not read "
                                    "your message. Please tell your admin, and send it again once the quota is back."},
    "cmd.my_leads": {"zh": "我的线索", "en": "my leads"},
    "cmd.text_mode": {"zh": "文本模式", "en": "text mode"},
    "cmd.card_mode": {"zh": "卡片模式", "en": "card mode"},
    "cmd.why": {"zh": "为什么是我", "en": "why"},
    "cmd.duty": {"zh": "值班", "en": "duty"},
    "cmd.duty_clear": {"zh": "清除", "en": "clear"},
    "duty.none": {"zh": "{team}未设值班：非工作时间的线索在下一个工作时段开始时分配给在班销售。",
                  "en": "{team} has nobody on duty: leads that come in outside working hours are assigned when "
                        "the next working window opens."},
    "duty.show": {"zh": "{team}值班：{names}（轮流，本时段 {now}）{source}",
                  "en": "{team} on duty: {names} (in turn; this period {now}){source}"},
    "duty.by": {"zh": "，由 {who} 设置", "en": ", set by {who}"},
    "duty.by_config": {"zh": "，来自配置 [duty]", "en": ", from [duty] in the config"},
    "duty.set": {"zh": "已设置{team}值班：{names}。非工作时间的线索将立即发给值班人员。",
                 "en": "{team} on duty now: {names}. Leads outside working hours go to them at once."},
    "duty.cleared": {"zh": "已清除{team}的值班设置。", "en": "Cleared the on-duty setting of {team}."},
    "duty.managers_only": {"zh": "只有经理或管理员可以设置值班。", "en": "Only a manager or an admin can set who is on duty."},
    "duty.unknown": {"zh": "找不到销售：{names}", "en": "No rep named: {names}"},
    "duty.all_teams": {"zh": "全体销售", "en": "all reps"},
    "help.title": {"zh": "leadbot 使用帮助", "en": "leadbot help"},
    "help.body": {
        "zh": ("· 帮助 — 显示本说明\n"
               "· 我的线索 — 列出等你跟进的线索\n"
               "· 文本模式 / 卡片模式 — 切换通知样式（看不到卡片时用文本模式）\n"
               "· 为什么是我 — 说明最近一条线索为什么分给你\n"
               "· 直接发送客户姓名或手机号 — 搜索客户"),
        "en": ("· help — show this message\n"
               "· my leads — list the leads waiting for you\n"
               "· text mode / card mode — switch how notifications look (text mode if cards do not show)\n"
               "· why — explain why the latest lead was routed to you\n"
               "· send a customer name or phone number — search customers"),
    },
    "mode.text_on": {"zh": "已切换为文本模式：通知将以文字和链接发送。发送“卡片模式”可切回。",
                     "en": "Text mode on: notifications come as text with a link. Send “card mode” to switch back."},
    "mode.card_on": {"zh": "已切换为卡片模式。发送“文本模式”可切回文字通知。",
                     "en": "Card mode on. Send “text mode” to get plain-text notifications."},
    "my_leads.title": {"zh": "你的待跟进线索（{n}）", "en": "Your open leads ({n})"},
    "my_leads.empty": {"zh": "你目前没有待跟进的线索", "en": "You have no open leads."},
    "why.title": {"zh": "为什么分给你：{name}", "en": "Why {name} went to you"},
    "why.rule": {"zh": "匹配规则：{rule}", "en": "Rule: {rule}"},
    "why.candidates": {"zh": "候选人：{names}", "en": "Candidates: {names}"},
    "notice.rep_left": {"zh": "{name} 已离职：{n} 条线索已重新分配", "en": {"one": "{name} has left: {n} lead re-routed", "other": "{name} has left: {n} leads re-routed"}},
    "notice.sidelined": {"zh": "{name} 连续多次超时未跟进，已暂停优先派单；点「恢复派单」让其回到轮转",
                         "en": "{name} missed the first-touch SLA repeatedly and is out of the rotation: tap Reinstate to bring them back"},
    "result.reinstated": {"zh": "{name} 已恢复派单", "en": "{name} is back in the rotation"},
    "notice.pool_stale": {"zh": "公海线索 {name} 长时间无人认领", "en": "Pool lead {name} has waited too long"},
    "notice.stagnation": {"zh": "{name} 在「{stage}」阶段停留过久", "en": "{name} has been in {stage} too long"},
    "digest.title": {"zh": "{team} 每日线索简报 {day}", "en": "{team} daily lead digest {day}"},
    "digest.new": {"zh": "新增", "en": "New"},
    "digest.claimed": {"zh": "已认领", "en": "Claimed"},
    "digest.overdue": {"zh": "超时未跟进", "en": "Overdue"},
    "digest.stuck": {"zh": "阶段停滞", "en": "Stuck"},
    "notice.friend_of_yours": {"zh": "{rep} 添加了你的客户 {name} 为好友", "en": "{rep} added your customer {name} on WeCom"},
    "why.none": {"zh": "最近没有分配给你的线索", "en": "No lead was routed to you recently."},
    "search.title": {"zh": "“{query}”：找到 {n} 条线索",
                     "en": {"one": "“{query}”: {n} lead found", "other": "“{query}”: {n} leads found"}},
    "list.lead_line": {"zh": "线索 #{lead_id} {who}", "en": "Lead #{lead_id} {who}"},
    "search.none": {"zh": "没有找到与“{query}”匹配的客户", "en": "No customer matches “{query}”."},
    "search.too_short": {"zh": "请至少输入 2 个字或 4 位数字", "en": "Type at least 2 letters or 4 digits."},
    # --- routing explanations (为什么是我 / `leadbot explain`) -----------------------------
    "explain.none": {"zh": "线索 #{lead} 还没有分配记录。", "en": "Lead #{lead} has no routing record yet."},
    "explain.no_lead": {"zh": "没有编号为 #{lead} 的线索。", "en": "There is no lead #{lead}."},
    "explain.sticky": {"zh": "线索 #{lead} 分配给 {rep}：{rep} 是该客户的现有负责人，老客户优先归属原负责人。",
                       "en": "Lead #{lead} went to {rep}: {rep} already owns this customer, and existing customers stay with their owner."},
    "explain.assigned": {"zh": "线索 #{lead} 按规则「{rule}」以{strategy}分配给 {rep}。",
                         "en": "Lead #{lead} went to {rep} by rule “{rule}” using {strategy}."},
    "explain.backup": {"zh": "线索 #{lead} 匹配规则「{rule}」，但{team}暂无可接人员，转给后备人员 {rep}。",
                       "en": "Lead #{lead} matched rule “{rule}”, but nobody in {team} was available, so it went to the backup {rep}."},
    "explain.manager": {"zh": "线索 #{lead} 匹配规则「{rule}」，但{team}暂无可接人员，转给团队经理 {rep}。",
                        "en": "Lead #{lead} matched rule “{rule}”, but nobody in {team} was available, so it went to the team manager {rep}."},
    "explain.pool": {"zh": "线索 #{lead} 匹配规则「{rule}」，{team}暂无可接人员，已进入公海：团队每位在岗成员各收到一张卡片，先认领者得。",
                     "en": "Lead #{lead} matched rule “{rule}”; nobody in {team} was available, so it is in the pool: every active member of the team got a card of their own, and the first to claim it wins."},
    "explain.pool_rule": {"zh": "线索 #{lead} 匹配规则「{rule}」，该规则直接将线索放入{team}公海。",
                          "en": "Lead #{lead} matched rule “{rule}”, which sends leads straight to the pool of {team}."},
    "explain.on_duty": {"zh": "线索 #{lead} 于 {came}（非工作时间）到达，匹配规则「{rule}」，已发给值班 {rep}。",
                        "en": "Lead #{lead} came in at {came} (outside working hours) and matched rule “{rule}”; it went to {rep}, on duty."},
    "explain.deferred": {"zh": "线索 #{lead} 于 {came}（非工作时间）到达，匹配规则「{rule}」；{team}没有值班人员，{until} 分配给{expected}，首次跟进时限从那时起算。",
                         "en": "Lead #{lead} came in at {came} (outside working hours) and matched rule “{rule}”; nobody in {team} is on duty, so at {until} it goes to {expected}, and its first-touch SLA counts from then."},
    "explain.expected": {"zh": "当时在班的 {name}（按当前轮转预计）", "en": "whoever is on shift then ({name} by the current rotation)"},
    "explain.expected_none": {"zh": "当时在班的销售", "en": "whoever is on shift then"},
    "explain.urgent": {"zh": "该规则标记为紧急：非工作时间直接发给值班人员。",
                       "en": "The rule marks its leads urgent: outside working hours they go straight to the rep on duty."},
    "explain.role.on_duty": {"zh": "值班，", "en": "on duty, "},
    "outcome.on_duty": {"zh": "值班", "en": "on duty"},
    "outcome.deferred": {"zh": "等待工作时间", "en": "waiting for working hours"},
    "explain.rule_since": {"zh": "该规则自 {date} 起为现行写法。", "en": " The rule has read as it does since {date}."},
    "explain.matched": {"zh": "匹配条件：{conds}。", "en": "Matched on: {conds}."},
    "explain.default_rule": {"zh": "没有规则匹配，使用默认规则（所有销售）。",
                             "en": "No rule matched; the default rule (all reps) applied."},
    "explain.candidates": {"zh": "候选人：", "en": "Candidates:"},
    "explain.chosen": {"zh": "  ✔ {name}：{role}{score}（权重 {weight}，在手 {open}，今日 {today}）— 选中",
                       "en": "  ✔ {name}: {role}{score} (weight {weight}, {open} open, {today} today) — chosen"},
    "explain.eligible": {"zh": "  · {name}：{role}{score}（权重 {weight}，在手 {open}，今日 {today}）",
                         "en": "  · {name}: {role}{score} (weight {weight}, {open} open, {today} today)"},
    "explain.skipped": {"zh": "  ✘ {name}：{role}跳过（{why}）", "en": "  ✘ {name}: {role}skipped ({why})"},
    "explain.score": {"zh": "得分 {score}", "en": "score {score}"},
    "explain.score_help.weighted_round_robin": {"zh": "得分 = 加权轮询累计值，最高者得。",
                                                "en": "Score = weighted round-robin credit; the highest wins."},
    "explain.score_help.least_loaded": {"zh": "得分 = 在手线索数 ÷ 权重，最低者得。",
                                        "en": "Score = open leads ÷ weight; the lowest wins."},
    "explain.score_help.capped": {"zh": "得分 = 今日已用配额比例，最低者得。",
                                  "en": "Score = share of today's cap used; the lowest wins."},
    "explain.trigger.declined": {"zh": "此前负责人 {prev} 已放弃该线索。", "en": "The previous owner {prev} passed on it."},
    "explain.trigger.sla_reassign": {"zh": "此前负责人 {prev} 未在时限内跟进，线索被重新分配。",
                                     "en": "The previous owner {prev} did not follow up in time, so it was reassigned."},
    "explain.trigger.rep_left": {"zh": "此前负责人 {prev} 已离职，线索被重新分配。",
                                 "en": "The previous owner {prev} left the company, so it was reassigned."},
    "explain.trigger.manager": {"zh": "经理将线索从 {prev} 改派。", "en": "A manager took it from {prev} and reassigned it."},
    "explain.trigger.other": {"zh": "此前负责人 {prev}，线索已重新分配。", "en": "The previous owner was {prev}; it was reassigned."},
    "explain.team": {"zh": "团队「{name}」", "en": "team “{name}”"},
    "explain.all": {"zh": "所有销售中", "en": "any team"},
    "explain.team_missing": {"zh": "注意：规则中的团队「{team}」不存在，请检查配置。",
                             "en": "Note: the rule's team “{team}” does not exist; check the configuration."},
    "explain.history": {"zh": "更早的分配记录：", "en": "Earlier decisions:"},
    "explain.history_line": {"zh": "  {at} {outcome} → {rep}（规则「{rule}」）",
                             "en": "  {at} {outcome} → {rep} (rule “{rule}”)"},
    "explain.nobody": {"zh": "无人", "en": "nobody"},
    "explain.role.owner": {"zh": "客户负责人，", "en": "customer owner, "},
    "explain.role.backup": {"zh": "后备，", "en": "backup, "},
    "explain.role.manager": {"zh": "经理，", "en": "manager, "},
    "rule.sticky_owner": {"zh": "老客户归属原负责人", "en": "existing customer keeps its owner"},
    "rule.default": {"zh": "默认规则", "en": "default rule"},
    "strategy.weighted_round_robin": {"zh": "加权轮询", "en": "weighted round robin"},
    "strategy.least_loaded": {"zh": "最少在手优先", "en": "least loaded"},
    "strategy.capped": {"zh": "配额均衡（每日上限）", "en": "capped (daily quotas)"},
    "strategy.sticky": {"zh": "老客户归属", "en": "sticky ownership"},
    "outcome.sticky": {"zh": "老客户归属", "en": "kept by owner"},
    "outcome.assigned": {"zh": "分配", "en": "assigned"},
    "outcome.backup": {"zh": "后备", "en": "backup"},
    "outcome.manager": {"zh": "经理", "en": "manager"},
    "outcome.pool": {"zh": "公海", "en": "pool"},
    "skip.excluded": {"zh": "已放弃或被排除", "en": "passed or excluded"},
    "skip.left": {"zh": "已离职", "en": "has left"},
    "skip.on_leave": {"zh": "休假中", "en": "on leave"},
    "skip.not_active": {"zh": "账号未启用", "en": "account not active"},
    "skip.sidelined": {"zh": "连续超时未跟进，暂停轮询", "en": "sidelined after missed follow-ups"},
    "skip.outside_hours": {"zh": "不在工作时间", "en": "outside working hours"},
    "skip.inactive": {"zh": "近期不在线", "en": "not active recently"},
    "skip.over_capacity": {"zh": "在手线索已满", "en": "at open-lead capacity"},
    "skip.daily_cap": {"zh": "今日已达上限", "en": "reached today's cap"},
    "skip.no_weight": {"zh": "权重为 0", "en": "weight is 0"},
    "skip.not_found": {"zh": "找不到此人", "en": "not found"},
    "skip.other": {"zh": "不可分配", "en": "not available"},
    "attr.region": {"zh": "地区", "en": "region"},
    "attr.city": {"zh": "城市", "en": "city"},
    "attr.source_channel": {"zh": "来源", "en": "source"},
    "attr.product_line": {"zh": "产品线", "en": "product line"},
    "attr.language": {"zh": "语言", "en": "language"},
    "attr.amount": {"zh": "金额", "en": "amount"},
    "attr.campaign": {"zh": "推广活动", "en": "campaign"},
    "attr.company": {"zh": "公司", "en": "company"},
    "attr.title": {"zh": "职位", "en": "job title"},
    "attr.stage": {"zh": "阶段", "en": "stage"},
    "attr.name": {"zh": "姓名", "en": "name"},
    "cond.is": {"zh": "{attr}为{value}", "en": "{attr} is {value}"},
    "cond.one_of": {"zh": "{attr}为{values}之一", "en": "{attr} is one of {values}"},
    "cond.at_least": {"zh": "{attr} ≥ {min}", "en": "{attr} ≥ {min}"},
    "cond.below": {"zh": "{attr} < {max}", "en": "{attr} < {max}"},
    "cond.between": {"zh": "{min} ≤ {attr} < {max}", "en": "{min} ≤ {attr} < {max}"},
    # --- daily digest chart (scheduler/digest.py) ----------------------------------------
    "chart.stuck": {"zh": "各阶段停滞", "en": "Stuck by stage"},
    "chart.resp": {"zh": "首次响应中位数（分钟）", "en": "Median first response (min)"},
    "chart.counts": {"zh": "自上次日报", "en": "Since last digest"},
    "chart.new": {"zh": "新线索", "en": "new"},
    "chart.claimed": {"zh": "已认领", "en": "claimed"},
    "chart.overdue": {"zh": "超时未跟进", "en": "overdue"},
    "chart.silent": {"zh": "沉默", "en": "silent"},
    "chart.nobody": {"zh": "未分配", "en": "unassigned"},
    "chart.rep": {"zh": "销售 #{rep_id}", "en": "Rep #{rep_id}"},
    # --- delivery (notifications/) ---------------------------------------------------------
    "delivery.open_link": {"zh": "点击处理：{url}", "en": "Open: {url}"},
    "delivery.dead_alert": {
        "zh": ("【leadbot 投递告警】有消息无法送达，已进入死信队列（同一事件只提醒一次）。\n"
               "首个错误：{error}\n请在服务器上运行 leadbot outbox 查看并处理。"),
        "en": ("[leadbot delivery alert] Messages could not be delivered and are dead-lettered "
               "(one alert per incident).\nFirst error: {error}\nRun `leadbot outbox` to review."),
    },
    "digest.lead": {"zh": "线索 #{lead_id}", "en": "Lead #{lead_id}"},
    "digest.more": {"zh": "…另有 {n} 条", "en": "…and {n} more"},
    # --- why a lead changed hands (reassignment reasons; routing triggers) ------------------
    "reason.manager": {"zh": "经理改派", "en": "reassigned by a manager"},
    "reason.sla_reassign": {"zh": "超时未跟进", "en": "not followed up in time"},
    "reason.declined": {"zh": "原负责人放弃", "en": "the owner passed"},
    "reason.rep_left": {"zh": "原负责人离职", "en": "the owner left"},
    "reason.from_pool": {"zh": "从公海认领", "en": "claimed from the pool"},
    "reason.new": {"zh": "新线索", "en": "new lead"},
    # --- the sandbox page (`leadbot demo`): guided tour and page words -------------------
    "sandbox.tour": {"zh": "导览", "en": "Guided tour"},
    "sandbox.next": {"zh": "下一步", "en": "Next"},
    "sandbox.back": {"zh": "上一步", "en": "Back"},
    "sandbox.close": {"zh": "关闭", "en": "Close"},
    "sandbox.done": {"zh": "这一步完成了", "en": "Done"},
    "sandbox.details": {"zh": "查看详情", "en": "Details"},
    "sandbox.send": {"zh": "发送", "en": "Send"},
    "sandbox.control.submit": {"zh": "提交线索", "en": "Submit lead"},
    "sandbox.control.friend": {"zh": "模拟加好友", "en": "Add friend"},
    "sandbox.control.pool": {"zh": "展会 → 华东公海", "en": "Trade show → East China pool"},
    "sandbox.control.north": {"zh": "北京 → 华北", "en": "Beijing → North China"},
    "sandbox.control.dup": {"zh": "重复客户", "en": "Duplicate customer"},
    "sandbox.control.ff60": {"zh": "+1分", "en": "+1 min"},
    "sandbox.control.ff180": {"zh": "+3分", "en": "+3 min"},
    "sandbox.control.ff300": {"zh": "+5分", "en": "+5 min"},
    "sandbox.control.ff1800": {"zh": "+30分", "en": "+30 min"},
    "sandbox.control.ff86400": {"zh": "+1天", "en": "+1 day"},
    "sandbox.clock": {
        "zh": ("沙盒时钟和真实时间一起走，快进按钮（+1分 … +1天）让它跳到未来。线索无人认领时，沙盒时间过去 {remind} "
               "提醒负责人，过去 {escalate} 升级给经理和经理群，所以要看升级就点「+5分」。推进阶段所需的证明材料"
               "（如需求文档）在卡片的「查看详情」页面里填写。"),
        "en": ("The sandbox clock runs in real time, and the fast-forward buttons (+1 min … +1 day) jump it "
               "ahead. While nobody claims a lead, the owner is reminded after {remind} of sandbox time and the "
               "manager and the managers' group get an escalation after {escalate}: press +5 min to see one. "
               "Evidence a stage needs (a requirements document, say) goes in the card's Details page."),
    },
    "sandbox.clock_short": {"zh": "时钟实时走动；升级需沙盒时间 {escalate}", "en": "Real-time clock; escalation after {escalate}"},
    "tour.intro.title": {"zh": "欢迎来到 leadbot 沙盒", "en": "Welcome to the leadbot sandbox"},
    "tour.intro.body": {"zh": "左边是操作面板，右边是每位销售的手机（企业微信或钉钉）和经理群。每条消息都由模拟的平台真实发送，和生产环境一样。跟着下面几步走一遍。",
                        "en": "Controls on the left; on the right each rep's phone (WeCom or DingTalk) and the managers' group. Every message is really sent by the simulated platform, as in production. Follow these steps."},
    "tour.submit.title": {"zh": "提交一条线索", "en": "Submit a lead"},
    "tour.submit.body": {"zh": "点「提交线索」。线索按路由规则分给一位销售，他的手机上出现新线索卡片。",
                         "en": "Press Submit lead. The routing rules pick a rep, and a new-lead card appears on that rep's phone."},
    "tour.claim.title": {"zh": "认领线索", "en": "Claim it"},
    "tour.claim.body": {"zh": "在收到卡片的手机上点「认领」。卡片变成「你已认领」，手机号完整显示；「查看详情」里可以推进阶段。",
                        "en": "On the phone with the card, tap Claim. The card turns into “You claimed …” with the full phone number; Details lets you move the stage on."},
    "tour.race.title": {"zh": "抢单", "en": "Race for a claim"},
    "tour.race.body": {"zh": "点预设「展会 → 华东公海」，再提交。华东每位销售都收到公海卡片：在两部手机上先后点「认领」，先点的人得到线索，另一位看到「已被 … 认领」。",
                       "en": "Press the preset Trade show → East China pool, then submit. Every rep of that team gets the pool card: tap Claim on two phones; the first tap wins and the other phone shows “Claimed by …”."},
    "tour.escalate.title": {"zh": "快进到升级", "en": "Fast-forward to an escalation"},
    "tour.escalate.body": {"zh": "再提交一条线索，不要认领，然后点「+5分」。过 {remind} 负责人收到提醒，过 {escalate} 经理和经理群收到升级，经理可以一键改派。",
                           "en": "Submit another lead, leave it unclaimed, and press +5 min. After {remind} the owner is reminded; after {escalate} the manager and the managers' group get an escalation with a one-tap reassign."},
    "tour.friend.title": {"zh": "添加好友", "en": "Add a friend"},
    "tour.friend.body": {"zh": "在「新好友」里选一位客户和一位销售，点「模拟加好友」。如果客户已在系统里，销售会收到一张卡片，说明客户是谁、由谁负责。",
                         "en": "In the new-contact panel pick a customer and a rep and press Add friend. If the customer is known, the rep gets a card saying who it is and who owns it."},
    "tour.merge.title": {"zh": "合并与撤销", "en": "Merge, then undo"},
    "tour.merge.body": {"zh": "点预设「重复客户」并提交。负责人收到「疑似重复」卡片：点「合并」，再点「撤销」恢复原样。",
                        "en": "Press the preset Duplicate customer and submit. The owner gets a “Possible duplicate” card: tap Merge, then Undo to put things back."},
    "tour.finish.title": {"zh": "完成", "en": "That's the tour"},
    "tour.finish.body": {"zh": "想试自己的路由规则，打开「路由试验」标签，贴上你的 config.toml。随时可以点右上角「导览」重新开始。",
                         "en": "To try your own routing rules, open the routing playground tab and paste your config.toml. The tour button at the top starts this again."},
    # --- the command line (bot/cli.py) ---------------------------------------------------------
    "cli.rows": {"zh": "{n} 行", "en": {"one": "{n} row", "other": "{n} rows"}},
    "cli.pairs": {"zh": "{n} 对", "en": {"one": "{n} pair", "other": "{n} pairs"}},
    "cli.clusters": {"zh": "{n} 组", "en": {"one": "{n} cluster", "other": "{n} clusters"}},
    "cli.import_summary": {"zh": "{kind}：新建 {created}，更新 {updated}，拒绝 {rejected}（{rows}）",
                           "en": "{kind}: {created} created, {updated} updated, {rejected} rejected ({rows})"},
    "cli.kind.customers": {"zh": "客户", "en": "customers"},
    "cli.kind.reps": {"zh": "销售", "en": "reps"},
    "cli.row_rejected": {"zh": "  第 {line} 行：拒绝{row_id}：{reason}", "en": "  line {line}: rejected{row_id}: {reason}"},
    "cli.row_key": {"zh": "（{row_id}）", "en": " ({row_id})"},
    "cli.dedupe_summary": {"zh": "{rows}：{pairs}，分为 {clusters}，已写入 {out}（直接匹配：强标识 {strong}，姓名/公司/地址证据 {weak}；最大一组 {largest}）",
                           "en": "{rows}: {pairs} in {clusters} written to {out} (direct matches: {strong} on a strong identifier, {weak} on name/company/address evidence; largest cluster {largest})"},
    "cli.dedupe_no_columns": {"zh": "{file}：没有任何可比较的列（{expected}）；表头是：{header}。未写入任何内容。",
                              "en": "{file}: none of the columns dedupe compares ({expected}); the header has: {header}. Nothing written."},
    "cli.suggested": {"zh": "{n} 对疑似重复待确认，已写入 {out}",
                      "en": {"one": "{n} possible duplicate to confirm written to {out}",
                             "other": "{n} possible duplicates to confirm written to {out}"}},
    "cli.db_revision": {"zh": "数据库已在版本 {revision}", "en": "database is at revision {revision}"},
    "cli.requeued": {"zh": "{n} 条死信已放回队列", "en": {"one": "{n} dead message back in the queue",
                                                       "other": "{n} dead messages back in the queue"}},
    "cli.no_rep": {"zh": "没有编号为 {rep_id} 的销售", "en": "no rep with id {rep_id}"},
    "cli.rep_left": {"zh": "{name} 已标记为离职；{n} 条进行中的线索已重新分配（卡片由运行中的服务发出）",
                     "en": {"one": "{name} marked as left; {n} open lead re-routed (cards go out with the running server)",
                            "other": "{name} marked as left; {n} open leads re-routed (cards go out with the running server)"}},
    "cli.db_cannot_prepare": {"zh": "数据库：无法准备 {where}：{error}", "en": "database: cannot prepare {where}: {error}"},
    "cli.db_upgrade_failed": {"zh": "数据库：升级失败：{error}", "en": "database: upgrade failed: {error}"},
    "cli.serving": {"zh": "leadbot 已在 http://{host}:{port} 运行（数据库版本 {revision}；配置 {source}；平台：{platforms}）",
                    "en": "leadbot serving on http://{host}:{port} (schema {revision}; config {source}; platforms: {platforms})"},
    "cli.platform.wecom": {"zh": "企业微信", "en": "WeCom"},
    "cli.platform.dingtalk": {"zh": "钉钉", "en": "DingTalk"},
    "cli.progress.import": {"zh": "正在导入{kind}", "en": "importing {kind}"},
    "cli.progress.compare": {"zh": "正在比对", "en": "comparing"},
    "cli.progress.pull": {"zh": "正在从 CRM 拉取", "en": "pulling from the CRM"},
    "cli.progress.push": {"zh": "正在排队变更事件", "en": "queueing change events"},
    "cli.sync_platform_missing": {"zh": "配置：缺少 [{platform}]（没有可读取的通讯录）",
                                  "en": "config: [{platform}]: missing (no directory to read)"},
    "cli.sync_no_platform": {"zh": "配置：[wecom] 和 [dingtalk] 都没有（没有可读取的通讯录）",
                             "en": "config: [wecom] and [dingtalk]: both missing (no directory to read)"},
    "cli.sync_root_dept": {"zh": "--root-dept 指的是某一个平台的部门：请加 --platform wecom 或 --platform dingtalk",
                           "en": "--root-dept names one platform's department: give --platform wecom or dingtalk"},
    "cli.sync_failed": {"zh": "通讯录同步失败：{error}", "en": "reps sync: {error}"},
    "cli.crm_off": {"zh": "配置：缺少 [crm_bridge]（CRM 同步未开启）", "en": "config: [crm_bridge]: missing (the CRM bridge is off)"},
    "cli.crm_no_pull_url": {"zh": "配置：[crm_bridge] pull_url 缺失（CRM 列出记录的地址）",
                            "en": "config: [crm_bridge] pull_url: missing (where the CRM lists its records)"},
    "cli.crm_no_webhooks": {"zh": "配置：[crm_bridge] webhook_urls 为空（无处推送）",
                            "en": "config: [crm_bridge] webhook_urls: empty (nowhere to push to)"},
    "cli.crm_pull_failed": {"zh": "CRM 拉取失败：{error}", "en": "crm pull: {error}"},
    "cli.crm_pulled": {"zh": "CRM 拉取：新建 {created}，更新 {updated}，未变 {unchanged}，拒绝 {rejected}（{pages}）",
                       "en": "crm pull: {created} created, {updated} updated, {unchanged} unchanged, {rejected} rejected ({pages})"},
    "cli.pages": {"zh": "{n} 页", "en": {"one": "{n} page", "other": "{n} pages"}},
    "cli.crm_rejected": {"zh": "  {kind} {ref}：{why}", "en": "  {kind} {ref}: {why}"},
    "cli.crm_bad_since": {"zh": "{since} 不是 ISO 日期或时间", "en": "{since} is not an ISO date or time"},
    "cli.crm_pushed": {"zh": "CRM 推送：{n} 条记录已排队，发往 {urls}；由 leadbot serve 发送",
                       "en": {"one": "crm push: {n} entity queued for {urls}; `leadbot serve` delivers it",
                              "other": "crm push: {n} entities queued for {urls}; `leadbot serve` delivers them"}},
    "cli.webhook_urls": {"zh": "{n} 个推送地址", "en": {"one": "{n} webhook URL", "other": "{n} webhook URLs"}},
    "cli.duty_no_team": {"zh": "（没有指定团队的规则）", "en": "(rules without a team)"},
    "cli.duty_line": {"zh": "{team}：{names}（{source}；第一位为本时段值班）",
                      "en": "{team}: {names} ({source}; first = this period)"},
    "cli.duty_nobody": {"zh": "{team}：无人值班：非工作时间的线索等到下一个工作时段",
                        "en": "{team}: nobody: off-hours leads wait for the next working window"},
    "cli.duty_set_by": {"zh": "由 {who} 于 {at} 设置", "en": "set by {who} at {at}"},
    "cli.duty_from_config": {"zh": "来自配置 [duty]", "en": "from [duty]"},
    "cli.duty_set": {"zh": "{team}：值班 {names}", "en": "{team}: on duty {names}"},
    "cli.duty_cleared": {"zh": "{team}：已清除值班设置", "en": "{team}: override cleared"},
    "cli.duty_had_none": {"zh": "{team}：本来就没有值班设置", "en": "{team}: had no override"},
    # --- time as people read it (bot/time_text.py) ----------------------------------------------
    "weekday.0": {"zh": "周一", "en": "Mon"},
    "weekday.1": {"zh": "周二", "en": "Tue"},
    "weekday.2": {"zh": "周三", "en": "Wed"},
    "weekday.3": {"zh": "周四", "en": "Thu"},
    "weekday.4": {"zh": "周五", "en": "Fri"},
    "weekday.5": {"zh": "周六", "en": "Sat"},
    "weekday.6": {"zh": "周日", "en": "Sun"},
    **{f"month.{m}": {"zh": f"{m}月", "en": en} for m, en in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)},
    "time.near": {"zh": "{weekday} {hhmm}", "en": "{weekday} {hhmm}"},
    "time.dated": {"zh": "{month}{day}日 {weekday} {hhmm}", "en": "{weekday} {day} {month} {hhmm}"},
    "time.date": {"zh": "{year}年{month}{day}日", "en": "{day} {month} {year}"},
    "cal.line": {"zh": "日历：{zone}，工作日 {days}（1 = 周一），{hours}，{holidays}，{extra}：{where}{teams}",
                 "en": "calendar: {zone}, working days {days} (1 = Monday), {hours}, {holidays}, {extra}: {where}{teams}"},
    "cal.holidays": {"zh": "节假日 {n} 天", "en": {"one": "{n} holiday", "other": "{n} holidays"}},
    "cal.extra_workdays": {"zh": "调休上班 {n} 天", "en": {"one": "{n} make-up workday", "other": "{n} make-up workdays"}},
    "cal.configured": {"zh": "{source} 中的 [calendar]", "en": "[calendar] in {source}"},
    "cal.default": {"zh": "内置默认（配置中没有 [calendar]）", "en": "built-in default (no [calendar] in the config)"},
    "cal.team": {"zh": "；团队 {name}：{zone} {hours}", "en": "; team {name}: {zone} {hours}"},
    "cal.now_inside": {"zh": "现在 {now}：工作时间内", "en": "now {now}: inside working hours"},
    "cal.now_round_the_clock": {"zh": "现在 {now}：非工作时间（下一个工作时段 {opens}）；[sla] 不按工作时间计时，不暂存任何消息",
                                "en": "now {now}: outside working hours (next window {opens}); [sla] working_time = false, so nothing is held"},
    "cal.now_held": {"zh": "现在 {now}：非工作时间：线索卡片和提醒暂存到 {opens}（当前暂存 {held} 条）；没有值班人员的线索届时分配",
                     "en": "now {now}: outside working hours: lead cards and reminders are held until {opens} ({held} held now); leads without an on-duty rep are assigned then"},
    "cal.policy_working": {"zh": "时间：SLA 只计工作时间；非工作时间线索卡片和提醒暂存到下一个工作时段（{escalations}）；回复本人操作的消息从不暂存",
                           "en": "time: SLA clocks count working hours only; outside them lead cards and reminders are held until the next working window ({escalations}); replies to a person's own action are never held"},
    "cal.escalations_break": {"zh": "升级照常发出", "en": "escalations break through"},
    "cal.escalations_wait": {"zh": "升级也等待", "en": "escalations wait too"},
    "cal.policy_round_the_clock": {"zh": "时间：[sla] 不按工作时间计时：SLA 全天计时，不因免打扰暂存任何消息（卡片、提醒和升级随时发出）",
                                   "en": "time: [sla] working_time = false: SLA clocks run around the clock, so no message is held for quiet hours (cards, reminders and escalations go out at any hour)"},
    # --- counts (plural forms) ------------------------------------------------------------
    "count.earlier_leads": {"zh": "此前 {n} 条线索", "en": {"one": "{n} earlier lead", "other": "{n} earlier leads"}},
    "count.activities": {"zh": "{n} 次跟进", "en": {"one": "{n} activity", "other": "{n} activities"}},
    # --- DingTalk work notices: a visible tag keeps two same-looking notices apart --------
    "ref.tag": {"zh": "消息编号 {ref}", "en": "Message no. {ref}"},
    # --- text fallback --------------------------------------------------------------------
    "text.act_link": {"zh": "{actions} → {url}", "en": "{actions} → {url}"},
    "text.open_link": {"zh": "详情 → {url}", "en": "Details → {url}"},
}


def normalize_lang(lang: str | None) -> str:
    """Any language we do not have falls back to Chinese, the product's home language."""
    if not lang:
        return DEFAULT_LANGUAGE
    short = lang.lower().replace("_", "-").split("-")[0]
    return short if short in LANGUAGES else DEFAULT_LANGUAGE


def plural_category(n: object, lang: str) -> str:
    """CLDR plural category of ``n``: English "one" for exactly 1, everything else "other"."""
    return "one" if normalize_lang(lang) == "en" and n == 1 else "other"


def t(key: str, lang: str = DEFAULT_LANGUAGE, **params: object) -> str:
    """The text for ``key`` in ``lang``. An unknown key is a bug and raises KeyError. A counted
    entry takes its count as ``n`` and picks the plural form for it."""
    lang = normalize_lang(lang)
    text = _CATALOGUE[key][lang]
    if not isinstance(text, str):
        text = text.get(plural_category(params["n"], lang)) or text["other"]
    return text.format(**params)


def forms(key: str, lang: str) -> tuple[str, ...]:
    """Every text ``key`` can render in ``lang``: one, or each plural form."""
    text = _CATALOGUE[key][normalize_lang(lang)]
    return (text,) if isinstance(text, str) else tuple(text.values())


def has(key: str) -> bool:
    return key in _CATALOGUE


def lookup(prefix: str, code: str, lang: str) -> str:
    """``t(prefix + code)`` when the catalogue knows the code, else the code as given."""
    key = f"{prefix}.{code}"
    return t(key, lang) if key in _CATALOGUE else code


def stage_name(stage: str, lang: str = DEFAULT_LANGUAGE) -> str:  # noqa: ARG001 - uniform API
    """Stage names come from config in the team's own language: shown exactly as configured."""
    return stage


def keys() -> tuple[str, ...]:
    return tuple(_CATALOGUE)


def catalogue() -> Mapping[str, Mapping[str, str | Mapping[str, str]]]:
    """Read-only view for tests and tooling (a completeness check, a translator's export)."""
    return {k: {lang: (v if isinstance(v, str) else dict(v)) for lang, v in e.items()}
            for k, e in _CATALOGUE.items()}


def placeholders(text: str) -> frozenset[str]:
    return frozenset(name for _, name, _, _ in string.Formatter().parse(text) if name)
