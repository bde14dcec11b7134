//! `users add | list | passwd`.

use std::io::BufRead as _;

use anyhow::Context as _;
use chat_consumer::service::users;

use super::{hasher, open, DatabaseArgs, PasswordArgs, UsersCommand};

pub(super) async fn execute(database: &DatabaseArgs, command: UsersCommand) -> anyhow::Result<()> {
    match command {
        UsersCommand::Add {
            name,
            email,
            password,
            hashing,
        } => {
            // Check the input and read the password before touching the database: nothing is
            // written if either fails.
            users::check_email(&email)?;
            let password = password.read()?;
            let db = open(database).await?;
            let hash = hasher(&hashing, 1)?.hash(&password).await?;
            let user = users::create(&db, &name, &email, hash)
                .await
                .with_context(|| format!("cannot add user `{name}`"))?;
            println!("added user {} (id {})", user.name, user.id);
        }
        UsersCommand::List => {
            let db = open(database).await?;
            println!(
                "{:>6}  {:<24} {:<32} {:>6}",
                "id", "name", "email", "online"
            );
            for user in users::list(&db).await? {
                println!(
                    "{:>6}  {:<24} {:<32} {:>6}",
                    user.id, user.name, user.email, user.online
                );
            }
        }
        UsersCommand::Passwd {
            name,
            password,
            hashing,
        } => {
            let password = password.read()?;
            let db = open(database).await?;
            let hash = hasher(&hashing, 1)?.hash(&password).await?;
            users::set_password(&db, &name, hash)
                .await
                .with_context(|| format!("cannot set the password of `{name}`"))?;
            println!("password of {name} changed");
        }
    }
    Ok(())
}

impl PasswordArgs {
    fn read(self) -> anyhow::Result<String> {
        let password = match self.password {
            Some(password) => password,
            None => {
                let mut line = String::new();
                std::io::stdin()
                    .lock()
                    .read_line(&mut line)
                    .context("cannot read the password from standard input")?;
                line.trim_end_matches(['\r', '\n']).to_owned()
            }
        };
        anyhow::ensure!(!password.is_empty(), "the password is empty");
        Ok(password)
    }
}
