//! Users.

use std::collections::HashMap;

use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use workteams_domain::command::{BatchCreateUsers, NewUser, UserLookup, UserUpdate};
use workteams_domain::text::fold;
use workteams_domain::{Entity, User, UserId};

use super::write::{WriteTransaction, begin_write};
use super::{Store, lookup, rows};
use crate::schema::tables::users;
use crate::{Page, PageRequest, RequestContext, StoreError, Written};

const LIST_KIND: &str = "users";

impl Store {
    /// Errors: `Validation`; `AlreadyExists` on `login` or `email`
    /// (ignoring case).
    pub async fn create_user(&self, context: &RequestContext, command: NewUser) -> Result<Written<User>, StoreError> {
        command.validate("")?;

        let mut tx = begin_write!(self, context, "create_user");

        check_login_free(tx.db(), &command.login, "login", None).await?;
        if let Some(email) = &command.email {
            check_email_free(tx.db(), email, "email", None).await?;
        }
        let user = insert_user(&mut tx, command).await?;

        tx.commit(self, user).await
    }

    /// Finds or creates users by login, in request order. An existing login
    /// returns the existing user unchanged.
    ///
    /// Errors: `Validation` (`users[i].login`...); `AlreadyExists` on
    /// `users[i].email` when a new user's e-mail is taken.
    pub async fn batch_create_users(
        &self,
        context: &RequestContext,
        command: BatchCreateUsers,
    ) -> Result<Written<Vec<User>>, StoreError> {
        command.validate()?;

        let mut tx = begin_write!(self, context, "batch_create_users");

        let mut created_by_login: HashMap<String, User> = HashMap::new();
        let mut result = Vec::with_capacity(command.users.len());
        for (index, new_user) in command.users.into_iter().enumerate() {
            let login_key = fold(&new_user.login);
            if let Some(user) = created_by_login.get(&login_key) {
                result.push(user.clone());
                continue;
            }
            if let Some(existing) = lookup::user_by_login(tx.db(), &new_user.login).await? {
                result.push(existing);
                continue;
            }

            if let Some(email) = &new_user.email {
                check_email_free(tx.db(), email, &format!("users[{index}].email"), None).await?;
            }
            let user = insert_user(&mut tx, new_user).await?;
            created_by_login.insert(login_key, user.clone());
            result.push(user);
        }

        tx.commit(self, result).await
    }

    /// Errors: `NotFound` on `id`, `login` or `email`.
    pub async fn get_user(&self, lookup: &UserLookup) -> Result<User, StoreError> {
        match lookup {
            UserLookup::Id(id) => lookup::user(self.db(), *id, "id").await,
            UserLookup::Login(login) => lookup::user_by_login(self.db(), login)
                .await?
                .ok_or_else(|| StoreError::not_found("user", "login", login)),
            UserLookup::Email(email) => lookup::user_by_email(self.db(), email)
                .await?
                .ok_or_else(|| StoreError::not_found("user", "email", email)),
        }
    }

    /// Errors: `Validation`; `NotFound` on `id`; `AlreadyExists` on `login`
    /// or `email`; `Aborted`.
    pub async fn update_user(&self, context: &RequestContext, command: UserUpdate) -> Result<Written<User>, StoreError> {
        command.validate()?;
        let UserUpdate {
            id,
            login,
            email,
            display_name,
            etag,
        } = command;

        let mut tx = begin_write!(self, context, "update_user");

        let current = lookup::user(tx.db(), id, "id").await?;
        lookup::check_etag(etag, current.version, "user")?;

        let mut updated = current.clone();
        if let Some(login) = login {
            check_login_free(tx.db(), &login, "login", Some(id)).await?;
            updated.login = login;
        }
        if let Some(email) = email {
            if let Some(address) = &email {
                check_email_free(tx.db(), address, "email", Some(id)).await?;
            }
            updated.email = email;
        }
        if let Some(display_name) = display_name {
            updated.display_name = if display_name.is_empty() { updated.login.clone() } else { display_name };
        }
        if updated == current {
            return tx.commit(self, current).await;
        }

        updated.version += 1;
        updated.update_time = tx.now();
        rows::user_row(&updated).update(tx.db()).await?;
        tx.updated(&Entity::User(current), Entity::User(updated.clone()));
        tx.commit(self, updated).await
    }

    /// Lists users by id.
    pub async fn list_users(&self, page: &PageRequest) -> Result<Page<User>, StoreError> {
        let position = self.pages().position(page, LIST_KIND, "")?;

        let mut query = users::Entity::find().order_by_asc(users::Column::Id);
        if let Some(after) = position.after.as_ref().and_then(|key| key.first()) {
            query = query.filter(users::Column::Id.gt(after.clone()));
        }
        let found = query.limit(position.size as u64 + 1).all(self.db()).await?;
        let items = found.into_iter().map(rows::user).collect::<Result<Vec<_>, _>>()?;

        Ok(self
            .pages()
            .page(LIST_KIND, "", position.size, items, |user| vec![user.id.to_string()]))
    }
}

/// Inserts a new user whose login and e-mail were checked to be free.
pub(crate) async fn insert_user(tx: &mut WriteTransaction, new_user: NewUser) -> Result<User, StoreError> {
    let NewUser {
        login,
        email,
        display_name,
    } = new_user;
    let now = tx.now();
    let user = User {
        id: UserId::generate(),
        display_name: if display_name.is_empty() { login.clone() } else { display_name },
        login,
        email,
        create_time: now,
        update_time: now,
        version: 1,
    };
    users::Entity::insert(rows::user_row(&user)).exec_without_returning(tx.db()).await?;
    tx.created(Entity::User(user.clone()));
    Ok(user)
}

/// Fails with `AlreadyExists` on `field` when a user other than `except`
/// has the login, ignoring case.
pub(crate) async fn check_login_free(
    db: &impl ConnectionTrait,
    login: &str,
    field: &str,
    except: Option<UserId>,
) -> Result<(), StoreError> {
    match lookup::user_by_login(db, login).await? {
        Some(user) if Some(user.id) != except => Err(StoreError::AlreadyExists {
            what: "user",
            field: field.to_owned(),
            value: login.to_owned(),
        }),
        _ => Ok(()),
    }
}

/// Fails with `AlreadyExists` on `field` when a user other than `except`
/// has the e-mail address, ignoring case.
pub(crate) async fn check_email_free(
    db: &impl ConnectionTrait,
    email: &str,
    field: &str,
    except: Option<UserId>,
) -> Result<(), StoreError> {
    let existing = users::Entity::find()
        .filter(users::Column::EmailKey.eq(fold(email)))
        .one(db)
        .await?;
    match existing {
        Some(row) if Some(row.id.as_str()) != except.map(|id| id.to_string()).as_deref() => {
            Err(StoreError::AlreadyExists {
                what: "user",
                field: field.to_owned(),
                value: email.to_owned(),
            })
        }
        _ => Ok(()),
    }
}
