-- A visitor's kind (探访人员类别, the plan's list): civil_affairs_office (民政办),
-- service_station (民政服务站), village_committee (村(居)委会), grid_worker (网格员),
-- volunteer (志愿者), relative (亲属), neighbour (邻里), social_worker (社会工作者),
-- other (其他). NULL for other roles and until set.
ALTER TABLE users ADD COLUMN visitor_kind TEXT;
