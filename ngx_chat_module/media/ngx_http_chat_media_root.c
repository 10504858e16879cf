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
 * subdirectory stops the start here, named, with what to do.
 */


static ngx_int_t ngx_http_chat_media_root_user(ngx_conf_t *cf, ngx_uid_t *uid,
    ngx_gid_t *gid);
static ngx_uint_t ngx_http_chat_media_root_writable(ngx_file_info_t *fi,
    ngx_uid_t uid, ngx_gid_t gid);


ngx_int_t
ngx_http_chat_media_root_init(ngx_conf_t *cf, ngx_str_t *root,
    ngx_uint_t create)
{
    u_char           *p, path[NGX_HTTP_CHAT_MEDIA_PATH + 8];
    DIR              *dir;
    ngx_gid_t         gid;
    ngx_uid_t         uid;
    ngx_err_t         err;
    ngx_path_t       *np;
    struct dirent    *de;
    ngx_file_info_t   fi;

    if (create) {
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

        if (ngx_add_path(cf, &np) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (ngx_http_chat_media_root_user(cf, &uid, &gid) != NGX_OK) {
        return NGX_ERROR;
    }

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
        /* an earlier run as root gave it to its workers' user */
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "the media root \"%s\" is not writable by this "
                           "user, whose workers store uploads there "
                           "(an earlier run as another user, or as root, "
                           "made it?): give it and what is in it to this "
                           "user (chown -R), or set another "
                           "\"chat_media_root\"", path);
        return NGX_ERROR;
    }

    dir = opendir((char *) path);

    if (dir == NULL) {
        err = ngx_errno;

        if (err == NGX_ENOENT || err == NGX_ENOTDIR) {
            /* NGINX or the first upload makes it */
            return NGX_OK;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, err,
                           "opendir(\"%s\") failed", path);
        return NGX_ERROR;
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

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "the media subdirectory \"%s\" (owner uid %d) "
                           "is not writable by the workers' user "
                           "(uid %d): an earlier run as another user made "
                           "it; give it and its files to the workers' "
                           "user (chown -R), or remove it",
                           path, (int) fi.st_uid,
                           uid == (ngx_uid_t) NGX_CONF_UNSET_UINT
                           ? (int) geteuid() : (int) uid);
        (void) closedir(dir);
        return NGX_ERROR;
    }

    err = ngx_errno;
    (void) closedir(dir);

    if (err) {
        *p = '\0';
        ngx_conf_log_error(NGX_LOG_EMERG, cf, err,
                           "readdir(\"%s\") failed", path);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * The workers' user and group when the master runs as root, as NGINX's
 * core module will set them (the "user" directive, else NGX_USER); unset
 * when it does not run as root (the workers are then this user).  A
 * "user" directive after the http{} block is not seen yet here.
 */

static ngx_int_t
ngx_http_chat_media_root_user(ngx_conf_t *cf, ngx_uid_t *uid, ngx_gid_t *gid)
{
    struct group     *grp;
    struct passwd    *pwd;
    ngx_core_conf_t  *ccf;

    *uid = (ngx_uid_t) NGX_CONF_UNSET_UINT;
    *gid = (ngx_gid_t) NGX_CONF_UNSET_UINT;

    if (geteuid() != 0) {
        return NGX_OK;
    }

    ccf = (ngx_core_conf_t *) ngx_get_conf(cf->cycle->conf_ctx,
                                           ngx_core_module);

    if (ccf->user != (ngx_uid_t) NGX_CONF_UNSET_UINT) {
        *uid = ccf->user;
        *gid = ccf->group;
        return NGX_OK;
    }

    pwd = getpwnam(NGX_USER);
    grp = getgrnam(NGX_GROUP);

    if (pwd == NULL || grp == NULL) {
        /* NGINX's core module says so, after the parse */
        *uid = 0;
        return NGX_OK;
    }

    *uid = pwd->pw_uid;
    *gid = grp->gr_gid;

    return NGX_OK;
}


/* the permission bits the kernel looks at for this user and group */

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
