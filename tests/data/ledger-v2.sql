-- A ledger written by p402 at schema version 2 (commit 873aa3f), the 24 events of
-- tests/conftest.py small_events(): what `p402 db upgrade` must carry forward.
BEGIN TRANSACTION;
CREATE TABLE events (
	id INTEGER NOT NULL, 
	tenant VARCHAR(64) NOT NULL, 
	event_id VARCHAR(200) NOT NULL, 
	requests BIGINT NOT NULL, 
	input_tokens BIGINT NOT NULL, 
	cache_read_tokens BIGINT NOT NULL, 
	cache_write_tokens BIGINT NOT NULL, 
	cache_write_1h_tokens BIGINT NOT NULL, 
	output_tokens BIGINT NOT NULL, 
	reasoning_tokens BIGINT NOT NULL, 
	provider VARCHAR(200), 
	model VARCHAR(200), 
	operation VARCHAR(200), 
	currency VARCHAR(200), 
	cost_source VARCHAR(200), 
	price_ref TEXT, 
	owner VARCHAR(200), 
	department VARCHAR(200), 
	employee VARCHAR(200), 
	customer VARCHAR(200), 
	workflow VARCHAR(200), 
	project VARCHAR(200), 
	feature VARCHAR(200), 
	attribution_rule VARCHAR(200), 
	api_key_id VARCHAR(200), 
	provider_project_id VARCHAR(200), 
	workspace_id VARCHAR(200), 
	user_id VARCHAR(200), 
	service_tier VARCHAR(200), 
	policy_decision VARCHAR(200), 
	policy VARCHAR(200), 
	outcome VARCHAR(200), 
	evidence_status VARCHAR(200), 
	source VARCHAR(200), 
	batch BOOLEAN NOT NULL, 
	occurred_at_us BIGINT NOT NULL, 
	cost_units BIGINT, 
	list_cost_units BIGINT, 
	tags TEXT NOT NULL, 
	retention_until_us BIGINT, 
	source_attribution TEXT, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_events_tenant_event_id UNIQUE (tenant, event_id)
);
INSERT INTO "events" VALUES(1,'acme','evt-000',1,1000,0,0,0,50,0,'openai','gpt-4o','chat','USD','provider',NULL,'owner@acme.example','Engineering',NULL,'Globex',NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,'allow',NULL,'success','reported','import:events',0,1790845200000000,1234567891,NULL,'{}',NULL,NULL);
INSERT INTO "events" VALUES(2,'acme','evt-001',1,1137,200,0,0,61,0,'anthropic','claude-sonnet-4-5','chat','USD','provider',NULL,'owner@acme.example','Support',NULL,NULL,'rag-search',NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,'allow',NULL,'success','reported','import:events',0,1790870400001000,2469135782,NULL,'{}',NULL,NULL);
INSERT INTO "events" VALUES(3,'acme','evt-002',1,1274,400,0,0,72,0,'google','gemini-2.5-flash','chat','USD','provider',NULL,'owner@acme.example','Sales',NULL,'Initech','drafts',NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,'allow',NULL,'success','reported','import:events',0,1790895600002000,3703703673,NULL,'{}',NULL,NULL);
INSERT INTO "events" VALUES(4,'acme','evt-003',1,1411,600,0,0,83,0,'openai','gpt-4o','chat','USD','provider',NULL,NULL,NULL,NULL,NULL,'triage',NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,'allow',NULL,'success','reported','import:events',0,1790920800003000,4938271564,NULL,'{}',NULL,NULL);
INSERT INTO "events" VALUES(5,'acme','evt-004',1,1548,0,0,0,94,0,'anthropic','claude-sonnet-4-5','chat','USD','provider',NULL,'owner@acme.example','Engineering',NULL,'Umbrella','rag-search',NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,'allow',NULL,'success','reported','import:events',0,1790946000004000,6172839455,NULL,'{}',NULL,NULL);
INSERT INTO "events" VALUES(6,'acme','evt-005',1,1685,200,0,0,105,0,'google','gemini-2.5-flash','chat','USD','provider',NULL,'owner@acme.example','Support',NULL,'Globex','drafts',NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,'flag',NULL,'success','reported','import:events',0,1790971200005000,7407407346,NULL,'{}',NULL,NULL);
INSERT INTO "events" VALUES(7,'acme','evt-006',1,1822,400,0,0,116,0,'openai','gpt-4o','chat','USD','provider',NULL,'owner@acme.example','Sales',NULL,NULL,'triage',NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,'allow',NULL,'success','reported','import:events',0,1790996400006000,8641975237,NULL,'{}',NULL,NULL);
INSERT INTO "events" VALUES(8,'acme','evt-007',1,1959,600,0,0,127,0,'anthropic','claude-sonnet-4-5','chat','USD','provider',NULL,NULL,NULL,NULL,'Initech',NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,'allow',NULL,'success','reported','import:events',0,1791021600007000,9876543128,NULL,'{}',NULL,NULL);
INSERT INTO "events" VALUES(9,'acme','evt-008',1,2096,0,0,0,138,0,'google','gemini-2.5-flash','chat','USD','provider',NULL,'owner@acme.example','Engineering',NULL,NULL,'drafts',NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,'allow',NULL,'success','reported','import:events',0,1791046800008000,11111111019,NULL,'{}',NULL,NULL);
INSERT INTO "events" VALUES(10,'acme','evt-009',1,2233,200,0,0,149,0,'openai','gpt-4o','chat','USD','provider',NULL,'owner@acme.example','Support',NULL,'Umbrella','triage',NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,'deny',NULL,'success','reported','import:events',0,1791072000009000,12345678910,NULL,'{}',NULL,NULL);
INSERT INTO "events" VALUES(11,'acme','evt-010',1,2370,400,0,0,160,0,'anthropic','claude-sonnet-4-5','chat','USD','provider',NULL,'owner@acme.example','Sales',NULL,'Globex','rag-search',NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,'allow',NULL,'success','reported','import:events',0,1791097200010000,13580246801,NULL,'{}',NULL,NULL);
INSERT INTO "events" VALUES(12,'acme','evt-011',1,2507,600,0,0,171,0,'google','gemini-2.5-flash','chat','USD','provider',NULL,NULL,NULL,NULL,NULL,'drafts',NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,'allow',NULL,'error','reported','import:events',0,1791122400011000,14814814692,NULL,'{}',NULL,NULL);
INSERT INTO "events" VALUES(13,'acme','evt-012',1,2644,0,0,0,182,0,'openai','gpt-4o','chat','USD','provider',NULL,'owner@acme.example','Engineering',NULL,'Initech','triage',NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,'allow',NULL,'success','reported','import:events',0,1791147600012000,16049382583,NULL,'{}',NULL,NULL);
INSERT INTO "events" VALUES(14,'acme','evt-013',1,2781,200,0,0,193,0,'anthropic','claude-sonnet-4-5','chat','USD','provider',NULL,'owner@acme.example','Support',NULL,NULL,'rag-search',NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,'allow',NULL,'success','reported','import:events',0,1791172800013000,17283950474,NULL,'{}',NULL,NULL);
INSERT INTO "events" VALUES(15,'acme','evt-014',1,2918,400,0,0,204,0,'google','gemini-2.5-flash','chat','USD','provider',NULL,'owner@acme.example','Sales',NULL,'Umbrella',NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,'allow',NULL,'success','reported','import:events',0,1791198000014000,18518518365,NULL,'{}',NULL,NULL);
INSERT INTO "events" VALUES(16,'acme','evt-015',1,3055,600,0,0,215,0,'openai','gpt-4o','chat','USD','provider',NULL,NULL,NULL,NULL,'Globex','triage',NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,'allow',NULL,'success','reported','import:events',0,1791223200015000,19753086256,NULL,'{}',NULL,NULL);
INSERT INTO "events" VALUES(17,'acme','evt-016',1,3192,0,0,0,226,0,'anthropic','claude-sonnet-4-5','chat','USD','provider',NULL,'owner@acme.example','Engineering',NULL,NULL,'rag-search',NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,'allow',NULL,'success','reported','import:events',0,1791248400016000,20987654147,NULL,'{}',NULL,NULL);
INSERT INTO "events" VALUES(18,'acme','evt-017',1,3329,200,0,0,237,0,'google','gemini-2.5-flash','chat','USD','provider',NULL,'owner@acme.example','Support',NULL,'Initech','drafts',NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,'allow',NULL,'success','reported','import:events',0,1791273600017000,22222222038,NULL,'{}',NULL,NULL);
INSERT INTO "events" VALUES(19,'acme','evt-018',1,3466,400,0,0,248,0,'openai','gpt-4o','chat','USD','provider',NULL,'owner@acme.example','Sales',NULL,NULL,'triage',NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,'allow',NULL,'success','reported','import:events',0,1791298800018000,23456789929,NULL,'{}',NULL,NULL);
INSERT INTO "events" VALUES(20,'acme','evt-019',1,3603,600,0,0,259,0,'anthropic','claude-sonnet-4-5','chat','USD','provider',NULL,NULL,NULL,NULL,'Umbrella','rag-search',NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,'allow',NULL,'success','reported','import:events',0,1791324000019000,24691357820,NULL,'{}',NULL,NULL);
INSERT INTO "events" VALUES(21,'acme','evt-020',1,3740,0,0,0,270,0,'google','gemini-2.5-flash','chat','USD','provider',NULL,'owner@acme.example','Engineering',NULL,'Globex','drafts',NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,'allow',NULL,'success','reported','import:events',0,1791349200020000,25925925711,NULL,'{}',NULL,NULL);
INSERT INTO "events" VALUES(22,'acme','evt-021',1,3877,200,0,0,281,0,'openai','gpt-4o','chat','USD','provider',NULL,'owner@acme.example','Support',NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,'allow',NULL,'success','reported','import:events',0,1791374400021000,27160493602,NULL,'{}',NULL,NULL);
INSERT INTO "events" VALUES(23,'acme','evt-022',1,4014,400,0,0,292,0,'anthropic','claude-sonnet-4-5','chat','USD','provider',NULL,'owner@acme.example','Sales',NULL,'Initech','rag-search',NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,'allow',NULL,'success','reported','import:events',0,1791399600022000,28395061493,NULL,'{}',NULL,NULL);
INSERT INTO "events" VALUES(24,'acme','evt-unpriced',1,5000,0,0,0,100,0,'openai','in-house-finetune-7',NULL,'USD','unpriced',NULL,NULL,'Engineering',NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,'allow',NULL,'success','reported','import:events',0,1792573200000000,NULL,NULL,'{}',NULL,NULL);
CREATE TABLE invoice_lines (
	id INTEGER NOT NULL, 
	tenant VARCHAR(64) NOT NULL, 
	line_id VARCHAR(200) NOT NULL, 
	provider VARCHAR(64) NOT NULL, 
	start_us BIGINT NOT NULL, 
	end_us BIGINT NOT NULL, 
	amount_units BIGINT NOT NULL, 
	currency VARCHAR(3) NOT NULL, 
	description VARCHAR(200), 
	project_id VARCHAR(200), 
	workspace_id VARCHAR(200), 
	api_key_id VARCHAR(200), 
	model VARCHAR(200), 
	token_type VARCHAR(200), 
	service_tier VARCHAR(200), 
	source VARCHAR(64) NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_invoice_lines_tenant_line_id UNIQUE (tenant, line_id)
);
CREATE TABLE p402_meta (
	"key" VARCHAR(64) NOT NULL, 
	value TEXT NOT NULL, 
	PRIMARY KEY ("key")
);
INSERT INTO "p402_meta" VALUES('schema','2');
CREATE INDEX ix_events_tenant_time ON events (tenant, occurred_at_us, event_id);
CREATE INDEX ix_invoice_lines_tenant_time ON invoice_lines (tenant, start_us);
COMMIT;
