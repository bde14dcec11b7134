-- The chat's tables for MySQL/MariaDB, exactly as chat-consumer's migrations create them
-- (a test compares the two). chat-consumer sets `created_at` and `updated_at` itself.
-- You do not need this file when chat-consumer runs its own migrations (`chat-consumer migrate`,
-- also done by `run`); it is here for reviewing the schema or creating it by hand.
--
-- `password` holds an argon2id hash (`$argon2id$...`). Rows loaded with a plain-text password,
-- as in the original tutorial, still log in: the first successful login replaces the plain
-- text with a hash. Create users with `chat-consumer users add <name> --email <e> --password-stdin`.

CREATE TABLE `users`
(
    `id`         int          NOT NULL AUTO_INCREMENT,
    `name`       varchar(255) NOT NULL,
    `email`      varchar(255) NOT NULL,
    `password`   varchar(255) NOT NULL,
    `online`     int          NOT NULL DEFAULT 0,
    `created_at` timestamp    NULL DEFAULT NULL,
    `updated_at` timestamp    NULL DEFAULT NULL,
    PRIMARY KEY (`id`),
    UNIQUE KEY `idx_n` (`name`)
);

-- Who is online: one row per logged-in browser connection (engine node, client id), shared by
-- every consumer process. A close removes its row; rows of connections whose close event was
-- lost are removed by the consumers' reconciliation. `users.online` is kept equal to the number
-- of a user's rows.
CREATE TABLE `connections`
(
    `node`      varchar(64) NOT NULL,
    `client_id` bigint      NOT NULL,
    `uid`       int         NOT NULL,
    `since`     timestamp   NOT NULL,
    PRIMARY KEY (`node`, `client_id`),
    KEY `idx_connections_uid` (`uid`)
);
