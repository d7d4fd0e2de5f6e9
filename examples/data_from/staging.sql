--
-- PostgreSQL database dump
--

\restrict AsSThtBBYcP22qVpk606oLwqvf9GkEhTbYIRa1f3SOmSRazbZgzBaOPosx40pjg

-- Dumped from database version 15.20 (Debian 15.20-0+deb12u1)
-- Dumped by pg_dump version 15.20 (Debian 15.20-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: _sqlx_migrations; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public._sqlx_migrations (
    version bigint NOT NULL,
    description text NOT NULL,
    installed_on timestamp with time zone DEFAULT now() NOT NULL,
    success boolean NOT NULL,
    checksum bytea NOT NULL,
    execution_time bigint NOT NULL
);


--
-- Name: users; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.users (
    id bigint NOT NULL,
    email text NOT NULL,
    signed_up_at timestamp with time zone DEFAULT now() NOT NULL
);


--
-- Name: users_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.users_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: users_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.users_id_seq OWNED BY public.users.id;


--
-- Name: users id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.users ALTER COLUMN id SET DEFAULT nextval('public.users_id_seq'::regclass);


--
-- Data for Name: _sqlx_migrations; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public._sqlx_migrations (version, description, installed_on, success, checksum, execution_time) FROM stdin;
1	create users	2026-01-05 10:00:00+00	t	\\x00	12
\.


--
-- Data for Name: users; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.users (id, email, signed_up_at) FROM stdin;
1	user1@example.com	2026-01-06 01:00:00+00
2	user2@example.com	2026-01-06 02:00:00+00
3	user3@example.com	2026-01-06 03:00:00+00
4	user4@example.com	2026-01-06 04:00:00+00
5	user5@example.com	2026-01-06 05:00:00+00
6	user6@example.com	2026-01-06 06:00:00+00
7	user7@example.com	2026-01-06 07:00:00+00
8	user8@example.com	2026-01-06 08:00:00+00
9	user9@example.com	2026-01-06 09:00:00+00
10	user10@example.com	2026-01-06 10:00:00+00
11	user11@example.com	2026-01-06 11:00:00+00
12	user12@example.com	2026-01-06 12:00:00+00
13	user13@example.com	2026-01-06 13:00:00+00
14	user14@example.com	2026-01-06 14:00:00+00
15	user15@example.com	2026-01-06 15:00:00+00
16	user16@example.com	2026-01-06 16:00:00+00
17	user17@example.com	2026-01-06 17:00:00+00
18	user18@example.com	2026-01-06 18:00:00+00
19	user19@example.com	2026-01-06 19:00:00+00
20	user20@example.com	2026-01-06 20:00:00+00
21	user21@example.com	2026-01-06 21:00:00+00
22	user22@example.com	2026-01-06 22:00:00+00
23	user23@example.com	2026-01-06 23:00:00+00
24	user24@example.com	2026-01-07 00:00:00+00
25	user25@example.com	2026-01-07 01:00:00+00
26	user26@example.com	2026-01-07 02:00:00+00
27	user27@example.com	2026-01-07 03:00:00+00
28	user28@example.com	2026-01-07 04:00:00+00
29	user29@example.com	2026-01-07 05:00:00+00
30	user30@example.com	2026-01-07 06:00:00+00
31	user31@example.com	2026-01-07 07:00:00+00
32	user32@example.com	2026-01-07 08:00:00+00
33	user33@example.com	2026-01-07 09:00:00+00
34	user34@example.com	2026-01-07 10:00:00+00
35	user35@example.com	2026-01-07 11:00:00+00
36	user36@example.com	2026-01-07 12:00:00+00
37	user37@example.com	2026-01-07 13:00:00+00
38	user38@example.com	2026-01-07 14:00:00+00
39	user39@example.com	2026-01-07 15:00:00+00
40	user40@example.com	2026-01-07 16:00:00+00
41	user41@example.com	2026-01-07 17:00:00+00
42	user42@example.com	2026-01-07 18:00:00+00
43	user43@example.com	2026-01-07 19:00:00+00
44	user44@example.com	2026-01-07 20:00:00+00
45	user45@example.com	2026-01-07 21:00:00+00
46	user46@example.com	2026-01-07 22:00:00+00
47	user47@example.com	2026-01-07 23:00:00+00
48	user48@example.com	2026-01-08 00:00:00+00
49	user49@example.com	2026-01-08 01:00:00+00
50	user50@example.com	2026-01-08 02:00:00+00
51	user51@example.com	2026-01-08 03:00:00+00
52	user52@example.com	2026-01-08 04:00:00+00
53	user53@example.com	2026-01-08 05:00:00+00
54	user54@example.com	2026-01-08 06:00:00+00
55	user55@example.com	2026-01-08 07:00:00+00
56	user56@example.com	2026-01-08 08:00:00+00
57	user57@example.com	2026-01-08 09:00:00+00
58	user58@example.com	2026-01-08 10:00:00+00
59	user59@example.com	2026-01-08 11:00:00+00
60	user60@example.com	2026-01-08 12:00:00+00
61	user61@example.com	2026-01-08 13:00:00+00
62	user62@example.com	2026-01-08 14:00:00+00
63	user63@example.com	2026-01-08 15:00:00+00
64	user64@example.com	2026-01-08 16:00:00+00
65	user65@example.com	2026-01-08 17:00:00+00
66	user66@example.com	2026-01-08 18:00:00+00
67	user67@example.com	2026-01-08 19:00:00+00
68	user68@example.com	2026-01-08 20:00:00+00
69	user69@example.com	2026-01-08 21:00:00+00
70	user70@example.com	2026-01-08 22:00:00+00
71	user71@example.com	2026-01-08 23:00:00+00
72	user72@example.com	2026-01-09 00:00:00+00
73	user73@example.com	2026-01-09 01:00:00+00
74	user74@example.com	2026-01-09 02:00:00+00
75	user75@example.com	2026-01-09 03:00:00+00
76	user76@example.com	2026-01-09 04:00:00+00
77	user77@example.com	2026-01-09 05:00:00+00
78	user78@example.com	2026-01-09 06:00:00+00
79	user79@example.com	2026-01-09 07:00:00+00
80	user80@example.com	2026-01-09 08:00:00+00
81	user81@example.com	2026-01-09 09:00:00+00
82	user82@example.com	2026-01-09 10:00:00+00
83	user83@example.com	2026-01-09 11:00:00+00
84	user84@example.com	2026-01-09 12:00:00+00
85	user85@example.com	2026-01-09 13:00:00+00
86	user86@example.com	2026-01-09 14:00:00+00
87	user87@example.com	2026-01-09 15:00:00+00
88	user88@example.com	2026-01-09 16:00:00+00
89	user89@example.com	2026-01-09 17:00:00+00
90	user90@example.com	2026-01-09 18:00:00+00
91	user91@example.com	2026-01-09 19:00:00+00
92	user92@example.com	2026-01-09 20:00:00+00
93	user93@example.com	2026-01-09 21:00:00+00
94	user94@example.com	2026-01-09 22:00:00+00
95	user95@example.com	2026-01-09 23:00:00+00
96	user96@example.com	2026-01-10 00:00:00+00
97	user97@example.com	2026-01-10 01:00:00+00
98	user98@example.com	2026-01-10 02:00:00+00
99	user99@example.com	2026-01-10 03:00:00+00
100	user100@example.com	2026-01-10 04:00:00+00
101	user101@example.com	2026-01-10 05:00:00+00
102	user102@example.com	2026-01-10 06:00:00+00
103	user103@example.com	2026-01-10 07:00:00+00
104	user104@example.com	2026-01-10 08:00:00+00
105	user105@example.com	2026-01-10 09:00:00+00
106	user106@example.com	2026-01-10 10:00:00+00
107	user107@example.com	2026-01-10 11:00:00+00
108	user108@example.com	2026-01-10 12:00:00+00
109	user109@example.com	2026-01-10 13:00:00+00
110	user110@example.com	2026-01-10 14:00:00+00
111	user111@example.com	2026-01-10 15:00:00+00
112	user112@example.com	2026-01-10 16:00:00+00
113	user113@example.com	2026-01-10 17:00:00+00
114	user114@example.com	2026-01-10 18:00:00+00
115	user115@example.com	2026-01-10 19:00:00+00
116	user116@example.com	2026-01-10 20:00:00+00
117	user117@example.com	2026-01-10 21:00:00+00
118	user118@example.com	2026-01-10 22:00:00+00
119	user119@example.com	2026-01-10 23:00:00+00
120	user120@example.com	2026-01-11 00:00:00+00
121	user121@example.com	2026-01-11 01:00:00+00
122	user122@example.com	2026-01-11 02:00:00+00
123	user123@example.com	2026-01-11 03:00:00+00
124	user124@example.com	2026-01-11 04:00:00+00
125	user125@example.com	2026-01-11 05:00:00+00
126	user126@example.com	2026-01-11 06:00:00+00
127	user127@example.com	2026-01-11 07:00:00+00
128	user128@example.com	2026-01-11 08:00:00+00
129	user129@example.com	2026-01-11 09:00:00+00
130	user130@example.com	2026-01-11 10:00:00+00
131	user131@example.com	2026-01-11 11:00:00+00
132	user132@example.com	2026-01-11 12:00:00+00
133	user133@example.com	2026-01-11 13:00:00+00
134	user134@example.com	2026-01-11 14:00:00+00
135	user135@example.com	2026-01-11 15:00:00+00
136	user136@example.com	2026-01-11 16:00:00+00
137	user137@example.com	2026-01-11 17:00:00+00
138	user138@example.com	2026-01-11 18:00:00+00
139	user139@example.com	2026-01-11 19:00:00+00
140	user140@example.com	2026-01-11 20:00:00+00
141	user141@example.com	2026-01-11 21:00:00+00
142	user142@example.com	2026-01-11 22:00:00+00
143	user143@example.com	2026-01-11 23:00:00+00
144	user144@example.com	2026-01-12 00:00:00+00
145	user145@example.com	2026-01-12 01:00:00+00
146	user146@example.com	2026-01-12 02:00:00+00
147	user147@example.com	2026-01-12 03:00:00+00
148	user148@example.com	2026-01-12 04:00:00+00
149	user149@example.com	2026-01-12 05:00:00+00
150	user150@example.com	2026-01-12 06:00:00+00
151	user151@example.com	2026-01-12 07:00:00+00
152	user152@example.com	2026-01-12 08:00:00+00
153	user153@example.com	2026-01-12 09:00:00+00
154	user154@example.com	2026-01-12 10:00:00+00
155	user155@example.com	2026-01-12 11:00:00+00
156	user156@example.com	2026-01-12 12:00:00+00
157	user157@example.com	2026-01-12 13:00:00+00
158	user158@example.com	2026-01-12 14:00:00+00
159	user159@example.com	2026-01-12 15:00:00+00
160	user160@example.com	2026-01-12 16:00:00+00
161	user161@example.com	2026-01-12 17:00:00+00
162	user162@example.com	2026-01-12 18:00:00+00
163	user163@example.com	2026-01-12 19:00:00+00
164	user164@example.com	2026-01-12 20:00:00+00
165	user165@example.com	2026-01-12 21:00:00+00
166	user166@example.com	2026-01-12 22:00:00+00
167	user167@example.com	2026-01-12 23:00:00+00
168	user168@example.com	2026-01-13 00:00:00+00
169	user169@example.com	2026-01-13 01:00:00+00
170	user170@example.com	2026-01-13 02:00:00+00
171	user171@example.com	2026-01-13 03:00:00+00
172	user172@example.com	2026-01-13 04:00:00+00
173	user173@example.com	2026-01-13 05:00:00+00
174	user174@example.com	2026-01-13 06:00:00+00
175	user175@example.com	2026-01-13 07:00:00+00
176	user176@example.com	2026-01-13 08:00:00+00
177	user177@example.com	2026-01-13 09:00:00+00
178	user178@example.com	2026-01-13 10:00:00+00
179	user179@example.com	2026-01-13 11:00:00+00
180	user180@example.com	2026-01-13 12:00:00+00
181	user181@example.com	2026-01-13 13:00:00+00
182	user182@example.com	2026-01-13 14:00:00+00
183	user183@example.com	2026-01-13 15:00:00+00
184	user184@example.com	2026-01-13 16:00:00+00
185	user185@example.com	2026-01-13 17:00:00+00
186	user186@example.com	2026-01-13 18:00:00+00
187	user187@example.com	2026-01-13 19:00:00+00
188	user188@example.com	2026-01-13 20:00:00+00
189	user189@example.com	2026-01-13 21:00:00+00
190	user190@example.com	2026-01-13 22:00:00+00
191	user191@example.com	2026-01-13 23:00:00+00
192	user192@example.com	2026-01-14 00:00:00+00
193	user193@example.com	2026-01-14 01:00:00+00
194	user194@example.com	2026-01-14 02:00:00+00
195	user195@example.com	2026-01-14 03:00:00+00
196	ann@example.com	2026-02-01 09:00:00+00
197	ann@example.com	2026-02-03 17:30:00+00
198	bob@example.com	2026-02-02 08:15:00+00
199	bob@example.com	2026-02-02 08:16:00+00
200	bob@example.com	2026-03-11 12:00:00+00
\.


--
-- Name: users_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.users_id_seq', 200, true);


--
-- Name: _sqlx_migrations _sqlx_migrations_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public._sqlx_migrations
    ADD CONSTRAINT _sqlx_migrations_pkey PRIMARY KEY (version);


--
-- Name: users users_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.users
    ADD CONSTRAINT users_pkey PRIMARY KEY (id);


--
-- PostgreSQL database dump complete
--

\unrestrict AsSThtBBYcP22qVpk606oLwqvf9GkEhTbYIRa1f3SOmSRazbZgzBaOPosx40pjg

