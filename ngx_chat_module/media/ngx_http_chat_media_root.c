/*
 * Copyright (C) ngx_chat_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_chat_media_int.h"


/*
 * The local media root at start.  The workers write under it as their
 * user: NGINX's default user ("nobody") or the "user" directive when the
 * master runs as root, the invoking user otherwise.
 *
 * A configured root is made by NGINX at start and, when the master runs
 * as root, given to the workers' user (ngx_create_paths(), as for
 * client_body_temp_path).  What lies under it is not ours to give away:
 * a <hash[0:2]> subdirectory that an earlier run as another user made
 * (and its files, that user's 0600 temporary files) is not writable by
 * these workers, and every upload hashing into it would fail.  Such a
 * subdirectory stops the start, named, with what to do.
 *
 * The check runs once the whole configuration is read (a "user" directive
 * may follow the http{} block) and the paths are made: in the master's
 * init_module.  A failure there ends the master, so only a start (or
 * "nginx -t") fails; a reload logs it and goes on.
 */


static void ngx_http_chat_media_root_user(ngx_cycle_t *cycle, ngx_uid_t *uid,
    ngx_gid_t *gid);
static ngx_uint_t ngx_http_chat_media_root_writable(ngx_file_info_t *fi,
    ngx_uid_t uid, ngx_gid_t gid);


/* at configuration: NGINX makes a configured root at start */

ngx_int_t
ngx_http_chat_media_root_path(ngx_conf_t *cf, ngx_str_t *root)
{
    ngx_path_t  *np;

    np = ngx_pcalloc(cf->pool, sizeof(ngx_path_t));
    if (np == NULL) {
        return NGX_ERROR;
    }

    np->name.len = root->len;
    np->name.data = ngx_pnalloc(cf->pool, root->len + 1);
    if (np->name.data == NULL) {
        return NGX_ERROR;
    }

    ngx_cpystrn(np->name.data, root->data, root->len + 1);
    np->conf_file = cf->conf_file->file.name.data;
    np->line = cf->conf_file->line;

    return ngx_add_path(cf, &np);
}


/* in the master, at start and on reload: the workers can write there */

ngx_int_t
ngx_http_chat_media_root_check(ngx_cycle_t *cycle, ngx_str_t *root)
{
    u_char           *p, path[NGX_HTTP_CHAT_MEDIA_PATH + 8];
    DIR              *dir;
    ngx_gid_t         gid;
    ngx_uid_t         uid;
    ngx_err_t         err;
    ngx_uint_t        level;
    struct dirent    *de;
    ngx_file_info_t   fi;

    /* a start fails; a reload must not end the master */
    level = ngx_is_init_cycle(cycle->old_cycle) ? NGX_LOG_EMERG
                                                : NGX_LOG_ALERT;

    ngx_http_chat_media_root_user(cycle, &uid, &gid);

    if (uid == 0) {
        /* workers as root write anywhere */
        return NGX_OK;
    }

    p = ngx_snprintf(path, sizeof(path) - 1, "%V", root);
    *p = '\0';

    if (uid == (ngx_uid_t) NGX_CONF_UNSET_UINT
        && access((char *) path, W_OK|X_OK) == -1
        && ngx_errno != NGX_ENOENT)
    {
        /* e.g. an earlier run as root gave it to its workers' user */
        ngx_log_error(level, cycle->log, ngx_errno,
                      "the media root \"%s\" is not writable by this "
                      "user, whose workers store uploads there (an earlier "
                      "run as another user, or as root, made it?): give it "
                      "and what is in it to this user (chown -R), or set "
                      "another \"chat_media_root\"", path);
        goto failed;
    }

    dir = opendir((char *) path);

    if (dir == NULL) {
        err = ngx_errno;

        if (err == NGX_ENOENT || err == NGX_ENOTDIR) {
            /* the first upload makes it, or says why it cannot */
            return NGX_OK;
        }

        ngx_log_error(level, cycle->log, err, "opendir(\"%s\") failed",
                      path);
        goto failed;
    }

    for ( ;; ) {
        ngx_set_errno(0);

        de = readdir(dir);
        if (de == NULL) {
            break;
        }

        /* only the <hash[0:2]> subdirectories are ours */
        if (ngx_strlen(de->d_name) != 2
            || ngx_hextoi((u_char *) de->d_name, 2) == NGX_ERROR)
        {
            continue;
        }

        (void) ngx_snprintf(p, path + sizeof(path) - p, "/%s%Z",
                            de->d_name);

        if (ngx_file_info(path, &fi) == NGX_FILE_ERROR
            || !ngx_is_dir(&fi))
        {
            /* not a directory: the upload that needs it says why */
            continue;
        }

        if (uid == (ngx_uid_t) NGX_CONF_UNSET_UINT
            ? access((char *) path, W_OK|X_OK) == 0
            : ngx_http_chat_media_root_writable(&fi, uid, gid))
        {
            continue;
        }

        ngx_log_error(level, cycle->log, 0,
                      "the media subdirectory \"%s\" (owner uid %d) is not "
                      "writable by the workers' user (uid %d): an earlier "
                      "run as another user made it; give it and its files "
                      "to the workers' user (chown -R), or remove it",
                      path, (int) fi.st_uid,
                      (int) (uid == (ngx_uid_t) NGX_CONF_UNSET_UINT
                             ? geteuid() : uid));
        (void) closedir(dir);
        goto failed;
    }

    err = ngx_errno;
    (void) closedir(dir);

    if (err) {
        *p = '\0';
        ngx_log_error(level, cycle->log, err, "readdir(\"%s\") failed",
                      path);
        goto failed;
    }

    return NGX_OK;

failed:

    return (level == NGX_LOG_EMERG) ? NGX_ERROR : NGX_OK;
}


/*
 * The workers' user and group when the master runs as root, as NGINX's
 * core module has set them (the "user" directive, else NGX_USER); unset
 * when it does not run as root (the workers are then this user)
 */

static void
ngx_http_chat_media_root_user(ngx_cycle_t *cycle, ngx_uid_t *uid,
    ngx_gid_t *gid)
{
    ngx_core_conf_t  *ccf;

    ccf = (ngx_core_conf_t *) ngx_get_conf(cycle->conf_ctx, ngx_core_module);

    *uid = ccf->user;
    *gid = ccf->group;
}


/*
 * the permission bits the kernel looks at for this user and its group
 * (the master is root: access() would answer for root; supplementary
 * groups are not counted)
 */

static ngx_uint_t
ngx_http_chat_media_root_writable(ngx_file_info_t *fi, ngx_uid_t uid,
    ngx_gid_t gid)
{
    mode_t  need;

    if (fi->st_uid == uid) {
        need = S_IWUSR|S_IXUSR;

    } else if (fi->st_gid == gid) {
        need = S_IWGRP|S_IXGRP;

    } else {
        need = S_IWOTH|S_IXOTH;
    }

    return (fi->st_mode & need) == need;
}
