"""The demo world: a Shanghai MSP, its staff and teams, and the companies it serves.

The data is built from fixed tables and one seeded random generator, so every install shows the
same world: 20 customers (one group company, 集团, with two subsidiaries), 35 sites, 70 contacts
(14 of them VIP), 4 teams, 16 staff accounts and 2 customer portal accounts. Everything is
written through the services, so the audit trail shows the seed like any other change.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction
from pypinyin import lazy_pinyin

from onestop.core import services
from onestop.core.models import Customer, Industry, Role, ServiceLine, User

PROVIDER_NAME = "申通达信息技术（上海）有限公司"
PROVIDER_DOMAIN = "stdit.cn"
# One password for every demo account; long and uncommon enough for the password validators.
DEMO_PASSWORD = "onestop-demo-2025"  # noqa: S105 - published on purpose: it is the demo
SEED = 20250601

Progress = Callable[[str, int, int], None]

D, R3A, NET, INT, WC, PROC, CLOUD, SEC = (
    ServiceLine.DESKTOP,
    ServiceLine.REMOTE_3A,
    ServiceLine.NETWORK_OPS,
    ServiceLine.INTEGRATION,
    ServiceLine.WEAK_CURRENT,
    ServiceLine.PROCUREMENT,
    ServiceLine.CLOUD,
    ServiceLine.SECURITY,
)

ROADS = {
    "上海": {
        "浦东新区": ["张江路", "世纪大道", "金科路", "川沙路"],
        "闵行区": ["春东路", "莘松路", "剑川路"],
        "徐汇区": ["漕溪北路", "宜山路", "虹漕路"],
        "静安区": ["南京西路", "江场路", "共和新路"],
        "嘉定区": ["墨玉南路", "叶城路"],
        "松江区": ["九亭大街", "荣乐东路"],
        "长宁区": ["仙霞路", "延安西路"],
        "黄浦区": ["中山东一路", "淮海中路"],
    },
    "苏州": {
        "工业园区": ["星湖街", "苏州大道东", "金鸡湖大道"],
        "高新区": ["狮山路", "竹园路"],
        "吴中区": ["东吴北路"],
        "昆山市": ["前进东路"],
    },
    "杭州": {
        "滨江区": ["江南大道", "滨盛路"],
        "西湖区": ["文三路", "天目山路"],
        "余杭区": ["文一西路"],
        "萧山区": ["市心北路"],
    },
}
AREA_CODES = {"上海": "021", "苏州": "0512", "杭州": "0571"}

# Surnames and given names without polyphonic characters, so the pinyin e-mail names are right.
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓彭"
# fmt: off
GIVEN_NAMES = (
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "洋", "艳", "勇", "军", "杰", "娟", "涛",
    "明", "超", "秀兰", "霞", "平", "刚", "桂英", "建华", "文博", "子涵", "思远", "海燕",
    "晓东", "志强", "雪梅", "俊杰", "佳怡", "一鸣", "晨曦", "浩然", "欣怡", "立新", "嘉豪",
)
# fmt: on
TITLES = ["IT经理", "行政主管", "网络管理员", "总经理", "财务总监", "人事经理", "采购专员", "前台"]
VIP_TITLES = frozenset({"总经理", "财务总监"})
MOBILE_PREFIXES = ["135", "136", "138", "139", "150", "158", "186", "187", "188", "177"]


@dataclass(frozen=True)
class CustomerSpec:
    name: str
    code: str
    industry: str
    domain: str
    service_lines: tuple[str, ...]
    sites: tuple[tuple[str, str, str], ...]  # (site name, city, district)
    parent: str | None = None
    status: str = Customer.Status.ACTIVE


# fmt: off
CUSTOMERS = (
    CustomerSpec(
        "华东精密机械集团有限公司", "HDJM", Industry.MANUFACTURING, "hdjm.com.cn",
        (D, NET, PROC, SEC), (("集团总部", "上海", "闵行区"), ("嘉定研发中心", "上海", "嘉定区")),
    ),
    CustomerSpec(
        "华东精密机械（苏州）有限公司", "HDJM-SZ", Industry.MANUFACTURING, "sz.hdjm.com.cn",
        (D, NET, WC), (("苏州工厂", "苏州", "工业园区"), ("昆山仓库", "苏州", "昆山市")),
        parent="HDJM",
    ),
    CustomerSpec(
        "华东精密机械（杭州）有限公司", "HDJM-HZ", Industry.MANUFACTURING, "hz.hdjm.com.cn",
        (D, R3A), (("杭州工厂", "杭州", "萧山区"),), parent="HDJM",
    ),
    CustomerSpec(
        "恒泰新材料股份有限公司", "HTXC", Industry.MANUFACTURING, "hengtai-nm.com",
        (NET, INT, WC), (("总部", "上海", "松江区"), ("生产基地", "苏州", "高新区")),
    ),
    CustomerSpec(
        "申城融资租赁有限公司", "SCRZ", Industry.FINANCE, "scleasing.com.cn",
        (D, NET, SEC, CLOUD), (("总部", "上海", "黄浦区"),),
    ),
    CustomerSpec(
        "海纳财富投资管理有限公司", "HNCF", Industry.FINANCE, "hainawealth.cn",
        (D, R3A, CLOUD), (("陆家嘴办公室", "上海", "浦东新区"), ("杭州分公司", "杭州", "西湖区")),
    ),
    CustomerSpec(
        "鲜丰汇连锁超市有限公司", "XFH", Industry.RETAIL, "xianfenghui.com",
        (R3A, NET, PROC),
        (("总部", "上海", "静安区"), ("配送中心", "上海", "嘉定区"),
         ("徐汇旗舰店", "上海", "徐汇区")),
    ),
    CustomerSpec(
        "悦享时尚百货有限公司", "YXSS", Industry.RETAIL, "yuexiang-style.cn",
        (D, WC), (("南京西路店", "上海", "静安区"), ("湖滨店", "杭州", "西湖区")),
    ),
    CustomerSpec(
        "仁和口腔医院", "RHKQ", Industry.HEALTHCARE, "renhe-dental.cn",
        (D, NET, SEC), (("长宁院区", "上海", "长宁区"), ("浦东院区", "上海", "浦东新区")),
    ),
    CustomerSpec(
        "康宁医疗器械有限公司", "KNYL", Industry.HEALTHCARE, "kangning-med.com",
        (D, CLOUD, PROC), (("总部", "苏州", "工业园区"),),
    ),
    CustomerSpec(
        "启明双语学校", "QMSY", Industry.EDUCATION, "qiming-school.cn",
        (D, WC, INT), (("小学部", "上海", "闵行区"), ("中学部", "上海", "闵行区")),
    ),
    CustomerSpec(
        "育才职业培训中心", "YCPX", Industry.EDUCATION, "yucai-edu.cn",
        (R3A, CLOUD), (("培训中心", "杭州", "余杭区"),),
    ),
    CustomerSpec(
        "通达冷链物流有限公司", "TDLL", Industry.LOGISTICS, "tdcoldchain.com",
        (NET, R3A, SEC),
        (("调度中心", "上海", "浦东新区"), ("冷库一号", "上海", "松江区"),
         ("苏州冷库", "苏州", "吴中区")),
    ),
    CustomerSpec(
        "速联国际货运代理有限公司", "SLHY", Industry.LOGISTICS, "sulian-freight.com",
        (D, CLOUD), (("外高桥办公室", "上海", "浦东新区"),),
    ),
    CustomerSpec(
        "明诚律师事务所", "MCLS", Industry.PROFESSIONAL, "mingcheng-law.cn",
        (D, CLOUD, SEC), (("上海办公室", "上海", "静安区"), ("杭州办公室", "杭州", "滨江区")),
    ),
    CustomerSpec(
        "汇信会计师事务所", "HXKJ", Industry.PROFESSIONAL, "huixin-cpa.cn",
        (D, R3A), (("总所", "上海", "徐汇区"),),
    ),
    CustomerSpec(
        "金桥置业发展有限公司", "JQZY", Industry.REAL_ESTATE, "jinqiao-property.cn",
        (INT, WC, NET), (("总部", "上海", "浦东新区"), ("金桥广场项目部", "上海", "浦东新区")),
    ),
    CustomerSpec(
        "云帆软件科技有限公司", "YFRJ", Industry.TECHNOLOGY, "yunfan-soft.com",
        (CLOUD, SEC, NET), (("研发中心", "杭州", "滨江区"), ("上海分公司", "上海", "徐汇区")),
    ),
    CustomerSpec(
        "外滩花园酒店管理有限公司", "WTHY", Industry.HOSPITALITY, "bundgarden-hotel.cn",
        (D, NET, WC), (("外滩花园酒店", "上海", "黄浦区"), ("苏州园区酒店", "苏州", "工业园区")),
    ),
    CustomerSpec(
        "徐汇区文化艺术中心", "XHWY", Industry.GOVERNMENT, "xhart.org.cn",
        (D, INT), (("艺术中心", "上海", "徐汇区"),), status=Customer.Status.PROSPECT,
    ),
)
# fmt: on


@dataclass(frozen=True)
class StaffSpec:
    username: str
    display_name: str
    role: str
    title: str


STAFF = (
    StaffSpec("admin", "周立群", Role.ADMIN, "系统管理员"),
    StaffSpec("manager", "陈建国", Role.MANAGER, "运维总监"),
    StaffSpec("liu.fang", "刘芳", Role.MANAGER, "服务交付经理"),
    StaffSpec("dispatcher", "林晓雯", Role.DISPATCHER, "服务台调度"),
    StaffSpec("he.li", "何丽", Role.DISPATCHER, "服务台调度"),
    StaffSpec("engineer", "王磊", Role.ENGINEER, "桌面运维工程师"),
    StaffSpec("li.qiang", "李强", Role.ENGINEER, "桌面运维工程师"),
    StaffSpec("zhang.hao", "张浩", Role.ENGINEER, "驻场工程师"),
    StaffSpec("zhao.yu", "赵宇", Role.ENGINEER, "桌面运维工程师"),
    StaffSpec("zheng.kai", "郑凯", Role.ENGINEER, "桌面运维工程师"),
    StaffSpec("sun.peng", "孙鹏", Role.ENGINEER, "网络工程师"),
    StaffSpec("huang.tao", "黄涛", Role.ENGINEER, "系统工程师"),
    StaffSpec("ma.chao", "马超", Role.ENGINEER, "安全工程师"),
    StaffSpec("wu.jun", "吴俊", Role.ENGINEER, "集成项目经理"),
    StaffSpec("sales", "赵静", Role.SALES, "客户经理"),
    StaffSpec("qian.lei", "钱蕾", Role.SALES, "客户经理"),
)


@dataclass(frozen=True)
class TeamSpec:
    name: str
    description: str
    lead: str
    members: tuple[str, ...]
    # Customers buying any of these lines are served by the team.
    serves: tuple[str, ...]
    regional: bool = False


# fmt: off
TEAMS = (
    TeamSpec(
        "桌面运维一组", "桌面IT外包与3A远程服务：上海浦西客户及华东精密机械集团",
        "engineer", ("engineer", "li.qiang", "zhang.hao", "dispatcher"), (D, R3A), regional=True,
    ),
    TeamSpec(
        "桌面运维二组", "桌面IT外包与3A远程服务：浦东、黄浦及苏州、杭州客户",
        "zhao.yu", ("zhao.yu", "zheng.kai", "he.li"), (D, R3A), regional=True,
    ),
    TeamSpec(
        "网络与服务器运维组", "网络、服务器与云平台的监控运维和网络安全",
        "sun.peng", ("sun.peng", "huang.tao", "ma.chao", "dispatcher"), (NET, SEC, CLOUD),
    ),
    TeamSpec(
        "集成项目组", "系统集成、弱电工程与IT采购项目",
        "wu.jun", ("wu.jun", "qian.lei"), (INT, WC, PROC),
    ),
)
# fmt: on

PUXI_DISTRICTS = frozenset({"闵行区", "徐汇区", "长宁区", "嘉定区", "松江区", "静安区"})
# The group company: its portal administrator also sees the two subsidiaries.
GROUP_CODE = "HDJM"
PORTAL_CUSTOMER = GROUP_CODE


@dataclass(frozen=True)
class PortalSpec:
    username: str
    display_name: str
    title: str
    is_customer_admin: bool


PORTAL_USERS = (
    PortalSpec("portal-admin", "钱文杰", "集团信息中心主任", True),
    PortalSpec("portal", "吴芳", "行政专员", False),
)


@dataclass(frozen=True)
class SitePlan:
    name: str
    city: str
    address: str


@dataclass(frozen=True)
class ContactPlan:
    name: str
    title: str
    phone: str
    email: str
    is_vip: bool
    site_index: int


@dataclass(frozen=True)
class CustomerPlan:
    spec: CustomerSpec
    phone: str
    sites: tuple[SitePlan, ...]
    contacts: tuple[ContactPlan, ...]


@dataclass(frozen=True)
class DemoAccount:
    username: str
    role: str
    display_name: str
    customer: str = ""
    is_customer_admin: bool = False


@dataclass(frozen=True)
class DemoLogins:
    """What `onestop demo` prints: the shared password and one account per kind of user."""

    password: str
    accounts: tuple[DemoAccount, ...]


LOGIN_USERNAMES = ("admin", "manager", "dispatcher", "engineer", "sales", "portal-admin", "portal")


def _mobile(rng: random.Random) -> str:
    digits = f"{rng.randrange(10**8):08d}"
    return f"+86 {rng.choice(MOBILE_PREFIXES)} {digits[:4]} {digits[4:]}"


def _rng(name: str) -> random.Random:
    """A generator of its own per account, so adding an account changes no other's data."""
    return random.Random(f"{SEED}:{name}")  # noqa: S311 - demo data, not secrets


def _mail_name(name: str) -> str:
    surname, given = lazy_pinyin(name[0]), lazy_pinyin(name[1:])
    return f"{''.join(given)}.{''.join(surname)}"


def plan_customers() -> tuple[CustomerPlan, ...]:
    """The customers' sites and contacts, the same on every call (fixed seed, no clock)."""
    rng = random.Random(SEED)  # noqa: S311 - demo data, not secrets
    plans = []
    for spec in CUSTOMERS:
        sites = []
        for site_name, city, district in spec.sites:
            road = rng.choice(ROADS[city][district])
            address = f"{city}市{district}{road}{rng.randint(1, 1999)}号"
            sites.append(SitePlan(name=site_name, city=city, address=address))
        hq_city = spec.sites[0][1]
        phone = f"{AREA_CODES[hq_city]}-{rng.randint(5000, 6999)}{rng.randrange(10**4):04d}"
        count = rng.randint(2, 5)
        names: list[str] = []
        while len(names) < count:
            name = rng.choice(SURNAMES) + rng.choice(GIVEN_NAMES)
            if name not in names:
                names.append(name)
        titles = ["IT经理", *rng.sample(TITLES[1:], len(names) - 1)]
        contacts = []
        for index, (name, title) in enumerate(zip(names, titles, strict=True)):
            contacts.append(
                ContactPlan(
                    name=name,
                    title=title,
                    phone=_mobile(rng),
                    email=f"{_mail_name(name)}@{spec.domain}",
                    is_vip=title in VIP_TITLES,
                    site_index=index % len(sites),
                )
            )
        plans.append(CustomerPlan(spec, phone, tuple(sites), tuple(contacts)))
    return tuple(plans)


def demo_logins() -> DemoLogins:
    """The demo accounts to print; portal accounts name their company."""
    portal_company = next(spec.name for spec in CUSTOMERS if spec.code == PORTAL_CUSTOMER)
    by_name = {staff.username: staff for staff in STAFF}
    accounts = []
    for username in LOGIN_USERNAMES:
        if username in by_name:
            staff = by_name[username]
            accounts.append(DemoAccount(username, staff.role, staff.display_name))
        else:
            portal = next(p for p in PORTAL_USERS if p.username == username)
            accounts.append(
                DemoAccount(
                    username,
                    Role.CUSTOMER,
                    portal.display_name,
                    portal_company,
                    portal.is_customer_admin,
                )
            )
    return DemoLogins(password=DEMO_PASSWORD, accounts=tuple(accounts))


def demo_is_seeded() -> bool:
    """True when the demo accounts are in the database (their password is the demo one)."""
    return User.objects.filter(username__in=LOGIN_USERNAMES).count() == len(LOGIN_USERNAMES)


@transaction.atomic
def seed_demo(*, progress: Progress | None = None) -> bool:
    """Writes the demo world into an empty database; returns False (and writes nothing) when
    the database already has customers, so seeding twice is harmless."""
    if Customer.objects.exists():
        return False
    plans = plan_customers()
    total = (
        len(STAFF)
        + sum(1 + len(p.sites) + len(p.contacts) for p in plans)
        + len(TEAMS)
        + len(PORTAL_USERS)
    )
    done = 0

    def step() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress("Seeding demo data", done, total)

    staff: dict[str, User] = {}
    for person in STAFF:
        staff[person.username] = services.user_create(
            actor=None,
            username=person.username,
            password=DEMO_PASSWORD,
            role=person.role,
            email=f"{person.username}@{PROVIDER_DOMAIN}",
            display_name=person.display_name,
            phone=_mobile(_rng(person.username)),
            language="zh-hans",
        )
        step()

    customers: dict[str, Customer] = {}
    for plan in plans:
        spec = plan.spec
        customer = services.customer_create(
            actor=None,
            name=spec.name,
            short_code=spec.code,
            industry=spec.industry,
            status=spec.status,
            service_lines=list(spec.service_lines),
            parent=customers[spec.parent] if spec.parent else None,
            phone=plan.phone,
            website=f"https://www.{spec.domain}",
        )
        customers[spec.code] = customer
        step()
        sites = []
        for site in plan.sites:
            sites.append(
                services.site_create(
                    actor=None,
                    customer=customer,
                    name=site.name,
                    address=site.address,
                    city=site.city,
                )
            )
            step()
        for contact in plan.contacts:
            services.contact_create(
                actor=None,
                customer=customer,
                site=sites[contact.site_index],
                name=contact.name,
                title=contact.title,
                phone=contact.phone,
                email=contact.email,
                is_vip=contact.is_vip,
            )
            step()

    _assign(staff, customers)
    for team in TEAMS:
        services.team_create(
            actor=None,
            name=team.name,
            description=team.description,
            lead=staff[team.lead],
            members=[staff[name] for name in team.members],
            customers=_served_by(team, customers),
        )
        step()

    for portal in PORTAL_USERS:
        services.user_create(
            actor=None,
            username=portal.username,
            password=DEMO_PASSWORD,
            role=Role.CUSTOMER,
            customer=customers[PORTAL_CUSTOMER],
            is_customer_admin=portal.is_customer_admin,
            email=f"{portal.username.replace('-', '.')}@{_domain(PORTAL_CUSTOMER)}",
            display_name=portal.display_name,
            phone=_mobile(_rng(portal.username)),
            language="zh-hans",
        )
        step()
    return True


def _domain(code: str) -> str:
    return next(spec.domain for spec in CUSTOMERS if spec.code == code)


def _desk_team(spec: CustomerSpec) -> str:
    """Desktop work splits by region: 一组 has Puxi and the group company, 二组 the rest."""
    if GROUP_CODE in (spec.code, spec.parent) or spec.sites[0][2] in PUXI_DISTRICTS:
        return "桌面运维一组"
    return "桌面运维二组"


def _served_by(team: TeamSpec, customers: dict[str, Customer]) -> list[Customer]:
    """The customers buying one of the team's service lines (desk teams: in their region)."""
    return [
        customers[spec.code]
        for spec in CUSTOMERS
        if set(spec.service_lines) & set(team.serves)
        and (not team.regional or _desk_team(spec) == team.name)
    ]


def _assign(staff: dict[str, User], customers: dict[str, Customer]) -> None:
    """Account managers own their customers; the on-site engineer serves the group directly."""
    codes = [spec.code for spec in CUSTOMERS]
    for username, share in (("sales", codes[::2]), ("qian.lei", codes[1::2])):
        services.user_update(
            actor=None, user=staff[username], customers=[customers[c] for c in share]
        )
    services.user_update(
        actor=None,
        user=staff["zhang.hao"],
        customers=[customers[GROUP_CODE]],
    )
